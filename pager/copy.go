package pager

import (
	"fmt"
	"io"

	"github.com/ringlog/ringlog/internal/invariants"
)

// copyOps keeps the view in Go heap memory: Map preads, WriteBack pwrites.
type copyOps struct {
	buf []byte
}

func newCopyOps(size int) *copyOps { return &copyOps{buf: make([]byte, size)} }

func (c *copyOps) mem() []byte { return c.buf }

func (c *copyOps) mapPages(v *View, vp, fp, n int) error {
	ps := v.pageSize
	dst := c.buf[vp*ps : (vp+n)*ps]
	if _, err := v.file.ReadAt(dst, int64(fp)*int64(ps)); err != nil {
		// Part of the range was overwritten: it shows nothing now.
		v.setLocked(vp, n, unmapped)
		c.poison(dst)
		return fmt.Errorf("pager: map %s: reading %d bytes at offset %d: %w", v.name, len(dst), int64(fp)*int64(ps), eofIsTruncation(err))
	}
	v.setLocked(vp, n, int64(fp))
	return nil
}

func (c *copyOps) unmapPages(v *View, vp, n int) error {
	v.setLocked(vp, n, unmapped)
	c.poison(c.buf[vp*v.pageSize : (vp+n)*v.pageSize])
	return nil
}

// poison overwrites released heap pages in invariant builds, so a slice
// still held over them reads garbage that checksums catch.
func (c *copyOps) poison(b []byte) {
	if invariants.Enabled {
		for i := range b {
			b[i] = 0xdb
		}
	}
}

func (c *copyOps) writeBack(v *View, vp, n int) error {
	return c.eachRun(v, vp, n, func(mem []byte, off int64) error {
		if _, err := v.file.WriteAt(mem, off); err != nil {
			return fmt.Errorf("pager: write back %s: %d bytes at offset %d: %w", v.name, len(mem), off, err)
		}
		return nil
	})
}

func (c *copyOps) reload(v *View, vp, n int) error {
	return c.eachRun(v, vp, n, func(mem []byte, off int64) error {
		if _, err := v.file.ReadAt(mem, off); err != nil {
			return fmt.Errorf("pager: reload %s: %d bytes at offset %d: %w", v.name, len(mem), off, eofIsTruncation(err))
		}
		return nil
	})
}

// eachRun calls fn for each maximal run of mapped view pages in [vp, vp+n)
// that shows consecutive file pages, in view order.
func (c *copyOps) eachRun(v *View, vp, n int, fn func(mem []byte, off int64) error) error {
	ps, t := v.pageSize, v.mu.table
	for i := vp; i < vp+n; {
		j := i + 1
		if t[i] < 0 {
			i = j
			continue
		}
		for j < vp+n && t[j] == t[j-1]+1 {
			j++
		}
		if err := fn(c.buf[i*ps:j*ps], t[i]*int64(ps)); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func (c *copyOps) release(v *View) error {
	c.buf = nil
	return nil
}

// eofIsTruncation reports a short read as the file having shrunk.
func eofIsTruncation(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w (%w)", ErrTruncated, err)
	}
	return err
}
