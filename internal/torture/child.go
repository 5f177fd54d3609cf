package torture

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// childEnv carries a child's job: "<kind> <json>".
const childEnv = "RINGLOG_TORTURE_CHILD"

// Child runs the job of a process the suites started, if this process is
// one, and exits; otherwise it returns at once. A program that runs the
// suites (cmd/ringlog, the package's tests) calls it first thing in main
// (TestMain), since the suites start their children by running the same
// executable again.
func Child() {
	spec, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	kind, js, _ := strings.Cut(spec, " ")
	var err error
	if job := childJobs[kind]; job != nil {
		err = job([]byte(js))
	} else {
		err = fmt.Errorf("unknown job %q", kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture child:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// childJobs are the jobs a child can do, by kind; each suite's file adds
// its own in init.
var childJobs = map[string]func(spec []byte) error{}

// childCommand is a command that runs this executable as a child doing job.
func childCommand(kind string, job any) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	// The test binary's flags keep a test run from starting in the child
	// should Child not be called; cmd/ringlog ignores arguments when it is
	// a child.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+kind+" "+string(js))
	return cmd, nil
}
