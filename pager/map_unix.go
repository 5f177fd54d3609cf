//go:build (linux || darwin || freebsd) && !ringlog_portable

package pager

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Hooks for the system calls that change mappings, so tests can make them
// fail the ways the kernel may.
var (
	sysMmap  = unix.MmapPtr
	sysRemap = remapFilePages
)

// mappedOps is the Mmap and Remap backends: a PROT_NONE reservation with
// shared file mappings placed inside it.
type mappedOps struct {
	base  unsafe.Pointer
	size  int
	fd    int
	prot  int
	remap bool
	dev   uint64 // identity of the file, to recognise its mappings
	ino   uint64
}

func newMmapOps(v *View) (ops, error) { return newMappedOps(v, false) }

func newMappedOps(v *View, remap bool) (*mappedOps, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(v.file.Fd()), &st); err != nil {
		return nil, fmt.Errorf("pager: view of %s: %w", v.name, err)
	}
	if err := budget.take(1); err != nil {
		return nil, fmt.Errorf("pager: view of %s: %w: %v", v.name, ErrMappingBudget, err)
	}
	p, err := sysMmap(-1, 0, nil, uintptr(v.size), unix.PROT_NONE, reserveFlags)
	if err != nil {
		budget.adjust(-1)
		return nil, fmt.Errorf("pager: view of %s: reserving %d bytes of address space: %w", v.name, v.size, err)
	}
	m := &mappedOps{
		base:  p,
		size:  v.size,
		fd:    int(v.file.Fd()),
		prot:  unix.PROT_READ | unix.PROT_WRITE,
		remap: remap,
		dev:   uint64(st.Dev),
		ino:   uint64(st.Ino),
	}
	if v.readOnly {
		m.prot = unix.PROT_READ
	}
	v.mu.vmas = 1
	v.base = uintptr(p)
	register(v)
	return m, nil
}

func (m *mappedOps) mem() []byte { return unsafe.Slice((*byte)(m.base), m.size) }

func (m *mappedOps) addr(v *View, vp int) unsafe.Pointer { return unsafe.Add(m.base, vp*v.pageSize) }

func (m *mappedOps) mapPages(v *View, vp, fp, n int) error {
	if !m.remap {
		return m.mmapRun(v, vp, fp, n)
	}
	// Rearrange what is mapped already with remap_file_pages; what is
	// PROT_NONE must first be mapped with mmap (remap only works inside
	// shared file mappings).
	t := v.mu.table
	for i := 0; i < n; {
		mapped := t[vp+i] >= 0
		j := i + 1
		for j < n && (t[vp+j] >= 0) == mapped {
			j++
		}
		if !mapped {
			if err := m.mmapRun(v, vp+i, fp+i, j-i); err != nil {
				return err
			}
		} else if err := m.remapRun(v, vp+i, fp+i, j-i); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func (m *mappedOps) mmapRun(v *View, vp, fp, n int) error {
	ps := v.pageSize
	flags := unix.MAP_SHARED | unix.MAP_FIXED
	if v.populate {
		flags |= populateFlag
	}
	_, err := sysMmap(m.fd, int64(fp)*int64(ps), m.addr(v, vp), uintptr(n*ps), m.prot, flags)
	if err != nil {
		m.recover(v, vp, n)
		return fmt.Errorf("pager: map %s: file offset %d at view offset %d, %d bytes: mmap: %w", v.name, int64(fp)*int64(ps), vp*ps, n*ps, err)
	}
	v.setLocked(vp, n, int64(fp))
	return nil
}

func (m *mappedOps) remapRun(v *View, vp, fp, n int) error {
	ps := v.pageSize
	err := sysRemap(m.addr(v, vp), n*ps, fp, !v.populate)
	if err != nil {
		m.recover(v, vp, n)
		return fmt.Errorf("pager: map %s: file offset %d at view offset %d, %d bytes: remap_file_pages: %w", v.name, int64(fp)*int64(ps), vp*ps, n*ps, err)
	}
	v.setLocked(vp, n, int64(fp))
	return nil
}

func (m *mappedOps) unmapPages(v *View, vp, n int) error {
	ps := v.pageSize
	if _, err := sysMmap(-1, 0, m.addr(v, vp), uintptr(n*ps), unix.PROT_NONE, reserveFlags|unix.MAP_FIXED); err != nil {
		m.recover(v, vp, n)
		return fmt.Errorf("pager: unmap %s: view offset %d, %d bytes: %w", v.name, vp*ps, n*ps, err)
	}
	v.setLocked(vp, n, unmapped)
	return nil
}

// recover finds out what a failed call left at view pages [vp, vp+n). The
// kernel may have kept the old mappings, or unmapped the range first and
// left a hole that another thread's mmap may have taken since. Holes are
// re-reserved without replacing anything; pages still mapped are kept if
// the kernel shows them as this view's own, and marked lost otherwise.
func (m *mappedOps) recover(v *View, vp, n int) {
	ps := v.pageSize
	if reserveAt(m.addr(v, vp), n*ps) == nil {
		v.setLocked(vp, n, unmapped)
		return
	}
	lo := uintptr(m.addr(v, vp))
	kms, _ := readKernelMappings(lo, lo+uintptr(n*ps), true)
	for i := 0; i < n; i++ {
		a := m.addr(v, vp+i)
		if reserveAt(a, ps) == nil {
			v.setLocked(vp+i, 1, unmapped)
			continue
		}
		v.mu.table[vp+i] = m.identify(kms, uintptr(a), v.mu.table[vp+i], ps)
	}
}

// identify says what the kernel shows at page address a: a file page of
// this view's file, this view's PROT_NONE reservation (only if it was
// unmapped before), or lost.
func (m *mappedOps) identify(kms []kernelMapping, a uintptr, was int64, ps int) int64 {
	for _, k := range kms {
		if a < k.start || a >= k.end {
			continue
		}
		switch {
		case k.shared && k.dev == m.dev && k.ino == m.ino:
			return (k.offset + int64(a-k.start)) / int64(ps)
		case was == unmapped && k.ino == 0 && k.perms == "---p" && k.noReserve:
			return unmapped
		}
		return lost
	}
	return lost
}

func (m *mappedOps) writeBack(v *View, vp, n int) error { return nil }
func (m *mappedOps) reload(v *View, vp, n int) error    { return nil }

// release unmaps the whole reservation, skipping pages marked lost (they
// may belong to someone else now).
func (m *mappedOps) release(v *View) error {
	unregister(v)
	t := v.mu.table
	var first error
	for i := 0; i < len(t); {
		j := i + 1
		if t[i] == lost {
			i = j
			continue
		}
		for j < len(t) && t[j] != lost {
			j++
		}
		if err := unix.MunmapPtr(m.addr(v, i), uintptr((j-i)*v.pageSize)); err != nil && first == nil {
			first = fmt.Errorf("pager: close %s: munmap view offset %d: %w", v.name, i*v.pageSize, err)
		}
		i = j
	}
	return first
}

// checkKernelLocked compares the page table with the kernel's own list of
// mappings (invariant builds and tests).
func (v *View) checkKernelLocked() error {
	if v.base == 0 || v.mu.closed {
		return nil
	}
	kms, err := readKernelMappings(v.base, v.base+uintptr(v.size), false)
	if err != nil || kms == nil {
		return err // not available on this platform
	}
	t, ps := v.mu.table, v.pageSize
	if want := vmaCount(t, nil); want != v.mu.vmas {
		return fmt.Errorf("pager: %s: counted %d mappings, table has %d", v.name, v.mu.vmas, want)
	}
	for _, fp := range t {
		if fp == lost {
			return nil // lost pages are not ours to describe
		}
	}
	if len(kms) != v.mu.vmas {
		return fmt.Errorf("pager: %s: the kernel shows %d mappings in the view, the pager counts %d", v.name, len(kms), v.mu.vmas)
	}
	for _, k := range kms {
		lo, hi := max(k.start, v.base), min(k.end, v.base+uintptr(v.size))
		for a := lo; a < hi; a += uintptr(ps) {
			vp := int(a-v.base) / ps
			want := int64(unmapped)
			if k.ino != 0 {
				want = (k.offset + int64(a-k.start)) / int64(ps)
			}
			if t[vp] != want {
				return fmt.Errorf("pager: %s: view offset %d shows file page %d in the kernel, %d in the table", v.name, vp*ps, want, t[vp])
			}
		}
	}
	return nil
}
