//go:build linux && !ringlog_portable

package pager

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelMapping is one line of /proc/self/maps (plus, from smaps, whether
// the mapping reserves no swap).
type kernelMapping struct {
	start, end uintptr
	perms      string
	offset     int64
	dev, ino   uint64
	shared     bool
	noReserve  bool
}

// readKernelMappings lists the kernel's mappings that intersect [lo, hi).
// withFlags reads /proc/self/smaps for the VmFlags (slower: the kernel
// walks page tables to fill it).
func readKernelMappings(lo, hi uintptr, withFlags bool) ([]kernelMapping, error) {
	name := "/proc/self/maps"
	if withFlags {
		name = "/proc/self/smaps"
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []kernelMapping
	inRange := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, ok := parseMapsLine(line); ok {
			inRange = k.start < hi && k.end > lo
			if inRange {
				out = append(out, k)
			}
			continue
		}
		if inRange && strings.HasPrefix(line, "VmFlags:") {
			out[len(out)-1].noReserve = strings.Contains(" "+line[len("VmFlags:"):]+" ", " nr ")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pager: reading %s: %w", name, err)
	}
	return out, nil
}

// parseMapsLine parses "start-end perms offset maj:min inode [path]".
func parseMapsLine(line string) (kernelMapping, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || !strings.Contains(f[0], "-") || len(f[1]) != 4 {
		return kernelMapping{}, false
	}
	lohi := strings.SplitN(f[0], "-", 2)
	start, err1 := strconv.ParseUint(lohi[0], 16, 64)
	end, err2 := strconv.ParseUint(lohi[1], 16, 64)
	off, err3 := strconv.ParseUint(f[2], 16, 64)
	majmin := strings.SplitN(f[3], ":", 2)
	if len(majmin) != 2 {
		return kernelMapping{}, false
	}
	maj, err4 := strconv.ParseUint(majmin[0], 16, 32)
	mnr, err5 := strconv.ParseUint(majmin[1], 16, 32)
	ino, err6 := strconv.ParseUint(f[4], 10, 64)
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			return kernelMapping{}, false
		}
	}
	return kernelMapping{
		start:  uintptr(start),
		end:    uintptr(end),
		perms:  f[1],
		offset: int64(off),
		dev:    unix.Mkdev(uint32(maj), uint32(mnr)),
		ino:    ino,
		shared: f[1][3] == 's',
	}, true
}
