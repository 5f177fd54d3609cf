package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/torture"
)

func TestMain(m *testing.M) {
	torture.Child()
	os.Exit(m.Run())
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e strings.Builder
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd("help")
	if code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, c.name) || !strings.Contains(out, c.summary) {
			t.Errorf("help does not list %s: %s", c.name, out)
		}
	}
	if code, _, _ := runCmd(); code != exitUsage {
		t.Errorf("no command: exit %d, want %d", code, exitUsage)
	}
	code, _, errOut := runCmd("frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd("help", "torture")
	if code != exitOK || !strings.Contains(errOut, "RELIABILITY <suite>") {
		t.Errorf("help torture: exit %d, %q", code, errOut)
	}
}

func TestTortureUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"torture", "-suites", "nosuch"},
		{"torture", "-trials", "crash"},
		{"torture", "-trials", "nosuch=3"},
		{"torture", "-bogus"},
		{"torture", "extra"},
	} {
		if code, _, _ := runCmd(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestTorture runs the crash and powerloss suites with a few trials each
// through the command and checks its lines and exit status.
func TestTorture(t *testing.T) {
	code, out, errOut := runCmd("torture", "-dir", t.TempDir(), "-suites", "crash,powerloss", "-trials", "crash=4,powerloss=6")
	t.Log(out, errOut)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	line := regexp.MustCompile(`(?m)^RELIABILITY (\w+) trials=(\d+) acked=(\d+) lost=0 corrupt=0 undetected=0$`)
	m := line.FindAllStringSubmatch(out, -1)
	if len(m) != 2 || m[0][1] != "crash" || m[0][2] != "4" || m[1][1] != "powerloss" || m[1][2] != "6" {
		t.Fatalf("unexpected output: %q", out)
	}
	for _, s := range m {
		if s[3] == "0" {
			t.Errorf("%s: nothing acknowledged", s[1])
		}
	}
	if !strings.Contains(errOut, "seed ") {
		t.Errorf("the seed is not printed: %q", errOut)
	}
}
