package wal

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the recovery scripts")

// TestRecoveryScripts runs the scripts in testdata/recovery: each block is
// a command, a line "----", and the output it must print. Every script
// runs over every backend and must print the same. Commands:
//
//	create [capacity=N]         a new log (sync policy never)
//	append n=N size=S [batch]   N records of S bytes (one batch if batch)
//	sync                        make everything durable
//	truncate-back pos=P         TruncateBack(P)
//	truncate-front pos=P        TruncateFront(P)
//	crash                       flush, then lose the process (no Close)
//	zero pos=P n=N              zero N bytes of the data area at position P
//	flip pos=P                  flip one bit of the byte at position P
//	reopen [mode=M]             open again with recovery mode M, and print
//	                            what Options.Replay received
//	read                        read every record from the checkpoint
//
// go test ./wal -run RecoveryScripts -rewrite regenerates the outputs.
func TestRecoveryScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/recovery/*.txt")
	if len(files) == 0 {
		t.Fatal("no recovery scripts")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var first string
			forEachBackend(t, func(t *testing.T, b pager.Backend) {
				out := runScript(t, file, b)
				if first == "" {
					first = out
					if *rewrite {
						if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
				} else if out != first {
					t.Fatalf("backend %v prints other output than the first backend", b)
				}
				want, _ := os.ReadFile(file)
				if out != string(want) {
					t.Fatalf("output differs from %s (rerun with -rewrite to see it):\n%s", file, diffLines(string(want), out))
				}
			})
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, a, c)
		}
	}
	return b.String()
}

type scriptState struct {
	t    *testing.T
	b    pager.Backend
	dir  string
	path string
	l    *Log
	n    int // records appended so far (their content depends on it)
	cap  int64
}

func runScript(t *testing.T, file string, b pager.Backend) string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st := &scriptState{t: t, b: b, dir: t.TempDir()}
	st.path = filepath.Join(st.dir, "wal")
	defer func() {
		if st.l != nil {
			st.l.Close()
		}
	}()
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		// A command, then "----", then its old output up to a blank line.
		out.WriteString(line + "\n")
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s: %q is not followed by ----", file, line)
		}
		for sc.Scan() && sc.Text() != "" {
		}
		out.WriteString("----\n")
		if res := st.run(line); res != "" {
			out.WriteString(res + "\n")
		}
		out.WriteString("\n")
	}
	return out.String()
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func (st *scriptState) num(a map[string]string, k string) int {
	v, err := strconv.Atoi(a[k])
	if err != nil {
		st.t.Fatalf("argument %s=%q: %v", k, a[k], err)
	}
	return v
}

var saltedName = regexp.MustCompile(`\.salvage-[0-9T]+`)

func (st *scriptState) clean(s string) string {
	s = strings.ReplaceAll(s, st.dir, "DIR")
	return saltedName.ReplaceAllString(s, ".salvage-TIME")
}

func (st *scriptState) run(line string) string {
	t := st.t
	ctx := context.Background()
	f := strings.Fields(line)
	a := args(f[1:])
	switch f[0] {
	case "create":
		st.cap = testCap
		if v, ok := a["capacity"]; ok {
			c, _ := strconv.ParseInt(v, 10, 64)
			st.cap = c
		}
		l, err := Create(st.path, &Options{Backend: st.b, Capacity: st.cap, Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		l.batchForTest = true
		st.l = l
		return ""
	case "append":
		n, size := st.num(a, "n"), st.num(a, "size")
		var ps [][]byte
		for i := 0; i < n; i++ {
			ps = append(ps, rec(st.n+i, size))
		}
		var first, last uint64
		if _, ok := a["batch"]; ok {
			p, err := st.l.AppendBatch(ctx, ps)
			if err != nil {
				return st.clean(err.Error())
			}
			first, last = p, p+uint64((n-1)*recordSize(size))
		} else {
			for i, p := range ps {
				pos, err := st.l.Append(ctx, p)
				if err != nil {
					return st.clean(err.Error())
				}
				if i == 0 {
					first = pos
				}
				last = pos
			}
		}
		st.n += n
		if err := st.l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("appended %d records at %d..%d", n, first, last)
	case "truncate-back", "truncate-front":
		pos := uint64(st.num(a, "pos"))
		var err error
		if f[0] == "truncate-back" {
			err = st.l.TruncateBack(ctx, pos)
		} else {
			err = st.l.TruncateFront(pos)
		}
		if err != nil {
			return "error: " + st.clean(err.Error())
		}
		return fmt.Sprintf("written through %d, durable through %d", st.l.Written(), st.l.Durable())
	case "sync":
		if err := st.l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("durable through %d", st.l.Durable())
	case "crash":
		// The page cache survives a process crash: what was written is
		// in the file. Copy it, let the log close (that writes to the
		// original only), and carry on with the copy.
		if err := st.l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		img, err := os.ReadFile(st.path)
		if err != nil {
			t.Fatal(err)
		}
		st.l.Close()
		st.l = nil
		if err := os.WriteFile(st.path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		return ""
	case "zero", "flip":
		if st.l != nil {
			t.Fatalf("%s needs a crashed log", f[0])
		}
		pos := uint64(st.num(a, "pos"))
		n := 1
		if f[0] == "zero" {
			n = st.num(a, "n")
		}
		fh, err := os.OpenFile(st.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		for i := 0; i < n; i++ {
			off := int64(64<<10) + int64((pos+uint64(i))%uint64(st.cap))
			b := []byte{0}
			if f[0] == "flip" {
				fh.ReadAt(b, off)
				b[0] ^= 0x10
			}
			fh.WriteAt(b, off)
		}
		return ""
	case "reopen":
		if st.l != nil {
			st.l.Close()
		}
		mode := RecoverDefault
		for _, m := range []RecoveryMode{RecoverDefault, RecoverStrict, RecoverPointInTime, RecoverSalvage} {
			if a["mode"] == m.String() {
				mode = m
			}
		}
		var replayed int
		var first, last uint64
		h := crc32.NewIEEE()
		replay := func(pos uint64, data []byte) error {
			if replayed == 0 {
				first = pos
			}
			last = pos
			replayed++
			h.Write(data)
			return nil
		}
		l, err := Open(st.path, &Options{Backend: st.b, Recovery: mode, Sync: SyncNever, Replay: replay})
		if err != nil {
			st.l = nil
			return "error: " + st.clean(err.Error())
		}
		l.batchForTest = true
		st.l = l
		return st.clean(l.Report().String()) + fmt.Sprintf("\nreplayed %d records at %d..%d, content crc %08x", replayed, first, last, h.Sum32())
	case "read":
		if st.l == nil {
			return "error: the log is not open"
		}
		rd, err := st.l.NewReader(st.l.Checkpoint(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var count int
		var first, last uint64
		h := crc32.NewIEEE()
		for pos, b := range rd.All() {
			if count == 0 {
				first = pos
			}
			last = pos
			count++
			h.Write(b)
		}
		if err := rd.Err(); err != nil {
			return "error: " + st.clean(err.Error())
		}
		return fmt.Sprintf("%d records at %d..%d, content crc %08x", count, first, last, h.Sum32())
	}
	t.Fatalf("unknown command %q", line)
	return ""
}
