package torture

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// Records written by the suites name themselves, so that whatever a
// recovered log returns can be checked without knowing what was written:
//
//	0   8  run: the writing process's (or trial's) random id
//	8   4  writer
//	12  8  k: the writer's record number, from 0, increasing
//	20  4  total size
//	24  .  bytes derived from (run, writer, k)
//
// A record that does not parse, or whose bytes differ from what its first 24
// bytes derive, is corrupt (wrong bytes, or a phantom).

// minPayload is the smallest payload the suites write.
const minPayload = 24

// recID identifies a record.
type recID struct {
	run uint64
	w   int
	k   int
}

func (id recID) String() string { return fmt.Sprintf("run %x writer %d record %d", id.run, id.w, id.k) }

// payload is the content of record id, size bytes (at least minPayload).
func payload(id recID, size int) []byte {
	return appendPayload(make([]byte, 0, size), id, size)
}

func appendPayload(b []byte, id recID, size int) []byte {
	b = binary.LittleEndian.AppendUint64(b, id.run)
	b = binary.LittleEndian.AppendUint32(b, uint32(id.w))
	b = binary.LittleEndian.AppendUint64(b, uint64(id.k))
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	s := mix(id.run ^ uint64(id.w)<<48 ^ uint64(id.k)*0x9e3779b97f4a7c15)
	for len(b)+8 <= size {
		s = mix(s + 0x9e3779b97f4a7c15)
		b = binary.LittleEndian.AppendUint64(b, s)
	}
	for len(b) < size {
		s = mix(s + 0x9e3779b97f4a7c15)
		b = append(b, byte(s))
	}
	return b
}

// parsePayload returns the id of a payload whose bytes are exactly what the
// id derives, and false for anything else.
func parsePayload(b []byte) (recID, bool) {
	if len(b) < minPayload {
		return recID{}, false
	}
	id := recID{
		run: binary.LittleEndian.Uint64(b),
		w:   int(binary.LittleEndian.Uint32(b[8:])),
		k:   int(binary.LittleEndian.Uint64(b[12:])),
	}
	if int(binary.LittleEndian.Uint32(b[20:])) != len(b) || id.k < 0 {
		return recID{}, false
	}
	exp := payload(id, len(b))
	if string(exp) != string(b) {
		return recID{}, false
	}
	return id, true
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// logConfig is the shape of a log a trial writes.
type logConfig struct {
	Backend     string `json:"backend"`
	Growing     bool   `json:"growing"`
	Capacity    int64  `json:"capacity"`
	SegmentSize int64  `json:"segment_size,omitempty"`
	Policy      string `json:"policy"` // always, interval, never
	Compress    bool   `json:"compress"`
}

func (lc logConfig) String() string {
	layout := "bounded"
	if lc.Growing {
		layout = fmt.Sprintf("growing/seg=%d", lc.SegmentSize)
	}
	return fmt.Sprintf("%s %s cap=%d sync=%s compress=%v", lc.Backend, layout, lc.Capacity, lc.Policy, lc.Compress)
}

// backends are the pager backends usable here, for writers (the copy
// backend always is).
func backends() []string {
	var out []string
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap, pager.Copy} {
		if pager.Available(b) == nil {
			out = append(out, b.String())
		}
	}
	return out
}

// randomLogConfig picks a log shape.
func randomLogConfig(rng *rand.Rand) logConfig {
	bs := backends()
	lc := logConfig{
		Backend:  bs[rng.IntN(len(bs))],
		Growing:  rng.IntN(3) == 0,
		Capacity: int64(4+rng.IntN(13)) << 16, // 256 KiB .. 1 MiB: the ring wraps within a trial
		Policy:   []string{"always", "interval", "never"}[rng.IntN(3)],
		Compress: rng.IntN(4) == 0,
	}
	if lc.Growing {
		lc.SegmentSize = 1 << 16 << rng.IntN(3) // 64..256 KiB
		lc.Capacity = 16 * lc.SegmentSize
	}
	return lc
}

// options are the wal options of the shape.
func (lc logConfig) options() (*wal.Options, error) {
	b, err := pager.ParseBackend(lc.Backend)
	if err != nil {
		return nil, err
	}
	o := &wal.Options{Backend: b, Capacity: lc.Capacity, SegmentSize: lc.SegmentSize}
	if lc.Growing {
		o.Layout = wal.Growing
	}
	switch strings.ToLower(lc.Policy) {
	case "always":
		o.Sync = wal.SyncAlways
	case "interval":
		o.Sync = wal.SyncInterval
	case "never":
		o.Sync = wal.SyncNever
	default:
		return nil, fmt.Errorf("unknown sync policy %q", lc.Policy)
	}
	if lc.Compress {
		o.Compression = wal.S2
	}
	return o, nil
}
