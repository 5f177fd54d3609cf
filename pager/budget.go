package pager

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// boundary reports whether view pages showing a and then b lie in two
// kernel mappings: unmapped pages merge into one PROT_NONE mapping, file
// pages merge when their file pages are consecutive, and a lost page is
// counted on its own.
func boundary(a, b int64) bool {
	switch {
	case a == lost || b == lost:
		return true
	case a == unmapped && b == unmapped:
		return false
	case a >= 0 && b == a+1:
		return false
	}
	return true
}

// vmaCount counts the kernel mappings over page table t; when at is not nil
// it supplies the value of each index instead of t (a planned change).
func vmaCount(t []int64, at func(i int) int64) int {
	if len(t) == 0 {
		return 0
	}
	get := func(i int) int64 { return t[i] }
	if at != nil {
		get = at
	}
	n := 1
	prev := get(0)
	for i := 1; i < len(t); i++ {
		cur := get(i)
		if boundary(prev, cur) {
			n++
		}
		prev = cur
	}
	return n
}

// budget is the process-wide count of kernel mappings held by views.
var budget = mappingBudget{max: maxMapCount() / 4}

type mappingBudget struct {
	mu   sync.Mutex
	used int
	max  int
}

// take reserves n more mappings (n >= 0) or fails without reserving.
func (b *mappingBudget) take(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return fmt.Errorf("%d in use + %d > %d", b.used, n, b.max)
	}
	b.used += n
	return nil
}

// adjust corrects the count by n (negative when mappings went away).
func (b *mappingBudget) adjust(n int) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

func (b *mappingBudget) limit() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

// SetMappingLimit sets the number of kernel mappings all views of this
// process together may hold, and returns the previous limit. The default is
// a quarter of vm.max_map_count, leaving the rest to the Go runtime and
// everything else in the process. Lowering it below what is in use refuses
// only new mappings.
func SetMappingLimit(n int) int {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	old := budget.max
	budget.max = n
	return old
}

// MappingsInUse is the number of kernel mappings the views of this process
// hold now.
func MappingsInUse() int {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	return budget.used
}

// maxMapCount is vm.max_map_count, or its usual default where it cannot
// be read.
func maxMapCount() int {
	maxMapOnce.Do(func() {
		maxMapValue = 65530
		if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
				maxMapValue = n
			}
		}
	})
	return maxMapValue
}

var (
	maxMapOnce  sync.Once
	maxMapValue int
)
