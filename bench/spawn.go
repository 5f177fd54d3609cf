package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// execChild runs one measurement in a child process: this binary again,
// with the spec in childEnv and a pipe for the result at resultFD.
func (b *benchRun) execChild(ctx context.Context, spec childSpec) (childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return childResult{}, fmt.Errorf("finding the bench binary: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return childResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		return childResult{}, err
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.ExtraFiles = []*os.File{pw} // resultFD
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return childResult{}, fmt.Errorf("starting %s: %w", exe, err)
	}
	out, readErr := io.ReadAll(pr)
	waitErr := cmd.Wait()
	ce := &childError{stdout: stdout.String(), stderr: stderr.String()}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		ce.err = fmt.Errorf("killed after %v (-timeout)", b.cfg.timeout)
		return childResult{}, ce
	case waitErr != nil:
		ce.err = waitErr
		return childResult{}, ce
	case readErr != nil:
		ce.err = fmt.Errorf("reading the result: %w", readErr)
		return childResult{}, ce
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		ce.err = fmt.Errorf("the child exited 0 without a valid result (%q): %v", out, err)
		return childResult{}, ce
	}
	return res, nil
}

// childError is a failed child: why, and what it printed.
type childError struct {
	err            error
	stdout, stderr string
}

// Error is the reason followed by the first line the child printed on
// stderr (its error, or the panic message).
func (e *childError) Error() string {
	for line := range strings.SplitSeq(e.stderr, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return e.err.Error() + ": " + line
		}
	}
	return e.err.Error()
}
func (e *childError) Unwrap() error { return e.err }

func (e *childError) writeOutput(w io.Writer) {
	for _, s := range []struct{ name, text string }{{"stderr", e.stderr}, {"stdout", e.stdout}} {
		text := strings.TrimRight(s.text, "\n")
		if text == "" {
			continue
		}
		fmt.Fprintf(w, "    child %s:\n", s.name)
		for line := range strings.SplitSeq(text, "\n") {
			fmt.Fprintf(w, "    | %s\n", line)
		}
	}
}

// cappedBuffer keeps the first 64 KiB written to it (a panic's message and
// the first goroutines' stacks) and counts the rest.
type cappedBuffer struct {
	buf     bytes.Buffer
	dropped int
}

const capBytes = 64 << 10

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := max(capBytes-c.buf.Len(), 0)
	k := min(room, len(p))
	c.buf.Write(p[:k])
	c.dropped += len(p) - k
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	if c.dropped > 0 {
		return fmt.Sprintf("%s\n[... %d more bytes]\n", c.buf.String(), c.dropped)
	}
	return c.buf.String()
}
