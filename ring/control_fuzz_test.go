package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// fuzzCtl is a ring file closed cleanly after a producer wrote to it and
// three consumers registered (one lossy, one that acknowledged part of
// what was written), built once.
var fuzzCtl struct {
	once  sync.Once
	image []byte
	err   error
}

func fuzzControlImage() ([]byte, error) {
	fuzzCtl.once.Do(func() {
		dir, err := os.MkdirTemp("", "ringlog-fuzz-")
		if err != nil {
			fuzzCtl.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "ring")
		r, err := Create(path, &Options{Capacity: layoutAlign, Backend: pager.Copy, UserData: []byte("the layer above")})
		if err != nil {
			fuzzCtl.err = err
			return
		}
		var cs []*Consumer
		for _, c := range []struct {
			name string
			o    *ConsumerOptions
		}{{"a", nil}, {"lossy", &ConsumerOptions{Lossy: true, MaxLag: 1000}}, {"c", nil}} {
			cons, err := r.Consumer(c.name, c.o)
			if err != nil {
				fuzzCtl.err = err
				return
			}
			cs = append(cs, cons)
		}
		if _, err := r.Write(context.Background(), bytes.Repeat([]byte("x"), 3000)); err == nil {
			err = cs[0].Release(1000)
		}
		if err == nil {
			err = r.Sync()
		}
		for _, c := range cs {
			c.Close()
		}
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fuzzCtl.err = err
			return
		}
		fuzzCtl.image, fuzzCtl.err = os.ReadFile(path)
	})
	return fuzzCtl.image, fuzzCtl.err
}

// sealHeaders sets the checksum of both header copies of img to match
// their bytes.
func sealHeaders(img []byte) {
	for _, off := range []int{headerA, headerB} {
		c := img[off : off+headerCopySize]
		binary.LittleEndian.PutUint32(c[crcOff:], crc32.Checksum(c[:crcOff], castagnoli))
	}
}

// FuzzControl edits the control region of a ring file (both header
// copies, the reserved page and the consumer slots; each edit 3 bytes: an
// offset in the region, little-endian, and the byte to put there), with
// seal re-checksums the header copies so that their fields get past the
// checksum, and opens it as the producer. It must never panic; an error
// must name the file; a ring that opens must list only consumers with
// valid names at positions it holds, and take a new consumer.
func FuzzControl(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{0xFC, 0x0F, 0x00}, false)                   // copy A's checksum
	f.Add([]byte{0x00, 0x00, 'X', 0x00, 0x10, 'X'}, false)   // both magics
	f.Add([]byte{0x00, 0x30, 0x01}, false)                   // slot 0 half registered
	f.Add([]byte{0x20, 0x30, 0xC8}, false)                   // slot 0's name length
	f.Add([]byte{0x08, 0x30, 0xFF, 0x0F, 0x30, 0x7F}, false) // slot 0's position
	f.Add([]byte{0x84, 0x30, 0x03}, false)                   // slot 1's flags
	f.Add([]byte{0x1A, 0x00, 0x02, 0x1A, 0x10, 0x02}, true)  // both capacities
	f.Add([]byte{0x35, 0x00, 0x40, 0x35, 0x10, 0x40}, true)  // both heads
	f.Add([]byte{0x41, 0x00, 0x50}, true)                    // copy A's user data length
	f.Add([]byte{0x44, 0x00, 0x01, 0x44, 0x10, 0x01}, true)  // segments of 64 KiB
	f.Add([]byte{0x10, 0x00, 0x09}, true)                    // copy A's sequence
	f.Fuzz(func(t *testing.T, edits []byte, seal bool) {
		image, err := fuzzControlImage()
		if err != nil {
			t.Fatal(err)
		}
		img := bytes.Clone(image)
		for i := 0; i+3 <= len(edits) && i < 300; i += 3 {
			img[int(edits[i])|int(edits[i+1])<<8] = edits[i+2]
		}
		if seal {
			sealHeaders(img)
			// A copy that claims the growing layout with a large capacity
			// makes Open reserve that much (on the heap with the copy
			// backend, and slot tables of capacity/segment entries): a
			// known limit, checked here rather than run out of memory.
			for _, off := range []int{headerA, headerB} {
				if h, err := decodeHeader(img[off : off+headerCopySize]); err == nil && h.segUnits != 0 && h.capacity > 16<<20 {
					return
				}
			}
		}
		path := filepath.Join(t.TempDir(), "ring")
		if err := os.WriteFile(path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, &Options{Backend: pager.Copy})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		defer r.Close()
		head := r.Head()
		for _, c := range r.Consumers() {
			if validName(c.Name) != nil || c.Position > head || (!c.Detached && !c.Lossy && head-c.Position > uint64(r.Capacity())) {
				t.Fatalf("consumer %+v with head %d, capacity %d", c, head, r.Capacity())
			}
		}
		c, err := r.Consumer("new", nil)
		if err != nil {
			if !errors.Is(err, ErrNoSlots) {
				t.Fatalf("a new consumer: %v", err)
			}
			return
		}
		c.Close()
	})
}
