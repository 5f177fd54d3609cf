// Command ringlog is the toolbox of ringlog logs: it runs the reliability
// suites against a directory of the user's choosing (torture).
//
// Usage:
//
//	ringlog <command> [flags]
//	ringlog help [command]
//
// Exit status: 0 on success; 1 when a command found what it looks for
// (torture: a record lost, corrupt or damage undetected); 2 for a usage
// error; 3 when the command could not do its job (an I/O error, say).
// Errors are one line on standard error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ringlog/ringlog/internal/torture"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFound   = 1
	exitUsage   = 2
	exitFailure = 3
)

// command is a subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"torture", "run the reliability suites (crash, power loss, bad input, full disk, truncation) on a directory", runTorture},
		{"inspect", "print a log's header facts, positions and consumers", runInspect},
		{"verify", "read every record of a log, verifying checksums; exit 1 on damage", runVerify},
		{"dump", "print a log's records as JSON lines or hex dumps", runDump},
		{"tail", "follow a live log, printing each new record", runTail},
	}
}

func main() {
	torture.Child() // the suites re-run this executable for their child processes
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) > 1 {
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ringlog: unknown command %q (ringlog help lists them)\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ringlog <command> [flags]\n\ncommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nringlog help <command> (or ringlog <command> -h) shows a command's flags.")
	fmt.Fprintln(w, "exit status: 0 ok; 1 the command found a problem; 2 usage error; 3 the command failed.")
}

// newFlags is a flag set for a subcommand that prints its usage on -h and
// reports errors as usage errors.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ringlog %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, returning the exit status to use if parsing
// ended the command (-h, or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}
