package storage

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzBatch builds batches from the fuzzer's operations (each: a control
// byte, a key length, a value length, then the key's and the value's
// bytes as far as the input goes; control bit 0 makes a delete, bit 1
// stretches the key to the largest allowed and bit 2 one byte past it)
// and reads them back with Ops, which is how engines apply them: every
// operation must come back as it was put, in order, with Len and Size to
// match, also after Reset reuses the batch; an oversized key must leave
// the batch refusing with ErrTooLarge.
func FuzzBatch(f *testing.F) {
	f.Add([]byte("\x00\x03\x05keyvalue"))
	f.Add([]byte("\x01\x04\x00gone\x00\x00\x00"))
	f.Add([]byte("\x02\x01\x01kv\x04\x01\x01kv"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		type op struct {
			kind       Kind
			key, value []byte
		}
		var ops []op
		tooLarge := false
		take := func(n int) []byte {
			n = min(n, len(in))
			b := in[:n]
			in = in[n:]
			return b
		}
		for len(in) >= 3 && len(ops) < 64 {
			ctl, kl, vl := in[0], int(in[1]), int(in[2])*3
			in = in[3:]
			o := op{kind: KindPut, key: take(kl)}
			if ctl&1 != 0 {
				o.kind = KindDelete
			} else {
				o.value = take(vl)
			}
			switch {
			case ctl&4 != 0:
				o.key = bytes.Repeat([]byte{'k'}, MaxKeySize+1)
				tooLarge = true
			case ctl&2 != 0:
				o.key = bytes.Repeat(o.key[:min(1, len(o.key))], MaxKeySize)
			}
			ops = append(ops, o)
		}
		var b Batch
		for round := range 2 {
			size := 0
			for _, o := range ops {
				if o.kind == KindDelete {
					b.Delete(o.key)
				} else {
					b.Put(o.key, o.value)
				}
				if CheckSizes(o.key, o.value) != nil {
					break
				}
				size += len(o.key) + len(o.value)
			}
			if tooLarge {
				if !errors.Is(b.Err(), ErrTooLarge) {
					t.Fatalf("round %d: an oversized key, and Err is %v", round, b.Err())
				}
			} else {
				if b.Err() != nil || b.Len() != len(ops) || b.Size() != size {
					t.Fatalf("round %d: Len %d, Size %d, Err %v; want %d, %d", round, b.Len(), b.Size(), b.Err(), len(ops), size)
				}
				i := 0
				for got := range b.Ops() {
					if i >= len(ops) {
						t.Fatalf("round %d: more operations than put", round)
					}
					if w := ops[i]; got.Kind != w.kind || !bytes.Equal(got.Key, w.key) || !bytes.Equal(got.Value, w.value) {
						t.Fatalf("round %d: operation %d is %v %q=%q, want %v %q=%q", round, i, got.Kind, got.Key, got.Value, w.kind, w.key, w.value)
					}
					i++
				}
				if i != len(ops) {
					t.Fatalf("round %d: %d operations back of %d", round, i, len(ops))
				}
			}
			b.Reset()
		}
	})
}
