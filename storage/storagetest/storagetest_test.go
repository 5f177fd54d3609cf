package storagetest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/storage"
)

func TestSelfVal(t *testing.T) {
	for _, key := range [][]byte{nil, {0}, []byte("a|b"), []byte("k1")} {
		for _, n := range []int{0, 1, 100} {
			v := selfVal(key, 42, n)
			ver, err := parseSelfVal(key, v)
			if err != nil || ver != 42 {
				t.Fatalf("parseSelfVal(%q, selfVal(%q, 42, %d)) = %d, %v", key, key, n, ver, err)
			}
			if _, err := parseSelfVal([]byte("other"), v); err == nil {
				t.Fatalf("a value of %q passed as one of another key", key)
			}
			if n > 0 {
				bad := append([]byte(nil), v...)
				bad[len(bad)-1] ^= 1
				if _, err := parseSelfVal(key, bad); err == nil {
					t.Fatalf("a corrupt value of %q passed", key)
				}
				if _, err := parseSelfVal(key, v[:len(v)-1]); err == nil {
					t.Fatalf("a truncated value of %q passed", key)
				}
			}
		}
	}
}

func TestRunPattern(t *testing.T) {
	p := runPattern("TestX/ringlog/Crash_Atomicity#01")
	parts := strings.Split(p, "/")
	for i, name := range []string{"TestX", "ringlog", "Crash_Atomicity#01"} {
		re := regexp.MustCompile(parts[i])
		if !re.MatchString(name) || re.MatchString(name+"2") || re.MatchString("x"+name) {
			t.Errorf("pattern %q for %q", parts[i], name)
		}
	}
}

func TestCrashModel(t *testing.T) {
	// The model after n batches is what applying them in order gives.
	m := model{}
	var b storage.Batch
	for n := 1; n <= 20; n++ {
		crashBatch(&b, 7, n)
		for op := range b.Ops() {
			if op.Kind == storage.KindPut {
				m[string(op.Key)] = string(op.Value)
			} else {
				delete(m, string(op.Key))
			}
		}
		if d := diffPairs(m.pairs(nil, nil), crashModel(7, n).pairs(nil, nil)); d != "" {
			t.Fatalf("after batch %d: %s", n, d)
		}
	}
	if len(crashModel(7, 0)) != 0 {
		t.Fatal("model of no batch is not empty")
	}
}

func TestDiffPairs(t *testing.T) {
	a := []kv{{"a", "1"}, {"b", "2"}}
	for _, c := range []struct {
		got, want []kv
		same      bool
	}{
		{a, a, true},
		{a, a[:1], false},
		{a[:1], a, false},
		{a, []kv{{"a", "1"}, {"b", "3"}}, false},
		{a, []kv{{"a", "1"}, {"c", "2"}}, false},
		{nil, nil, true},
	} {
		if d := diffPairs(c.got, c.want); (d == "") != c.same {
			t.Errorf("diffPairs(%v, %v) = %q", c.got, c.want, d)
		}
	}
}
