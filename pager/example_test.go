package pager_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ringlog/ringlog/pager"
)

// A view puts the pages of a file at any page of one range of memory, in
// any order and more than once. Here a file of three pages is shown
// reversed, with its last page a second time after it. The output is the
// same on every backend; only View.Backend tells which one Auto took.
func Example() {
	dir, err := os.MkdirTemp("", "pager-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A file of three pages, each starting with its own name. The pager
	// maps only what the file covers: make it its full size first.
	ps := pager.PageSize
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(3 * ps)); err != nil {
		log.Fatal(err)
	}
	for i, name := range []string{"alpha", "bravo", "charlie"} {
		if _, err := f.WriteAt([]byte(name), int64(i*ps)); err != nil {
			log.Fatal(err)
		}
	}

	// A view of four pages with nothing mapped yet, on whichever backend
	// works here (Auto).
	v, err := pager.New(f, 4*ps, &pager.Options{Backend: pager.Auto})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	fmt.Println("backend chosen:", v.Backend() != pager.Auto)

	// View pages 0, 1, 2 show file pages 2, 1, 0; view page 3 shows file
	// page 2 again.
	for i := range 3 {
		if err := v.Map(i*ps, int64((2-i)*ps), ps); err != nil {
			log.Fatal(err)
		}
	}
	if err := v.Map(3*ps, int64(2*ps), ps); err != nil {
		log.Fatal(err)
	}

	// Bytes reads the view in place: no copy.
	all, err := v.Bytes(0, 4*ps)
	if err != nil {
		log.Fatal(err)
	}
	for i := range 4 {
		page := all[i*ps : (i+1)*ps]
		fmt.Printf("view page %d: %s\n", i, page[:bytes.IndexByte(page, 0)])
	}
	for _, r := range v.Runs() {
		fmt.Printf("view page %d: file page %d, %d page(s)\n", r.ViewOff/ps, r.FileOff/int64(ps), r.Len/ps)
	}

	// ReadAt copies out of the view under the fault guard, so a page that
	// cannot be read is an error rather than a crash.
	word := make([]byte, 5)
	if _, err := v.ReadAt(word, int64(2*ps)); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ReadAt view page 2: %s\n", word)

	// Unmapped pages are no longer part of the view.
	if err := v.Unmap(3*ps, ps); err != nil {
		log.Fatal(err)
	}
	_, err = v.Bytes(3*ps, ps)
	fmt.Println("after Unmap:", errors.Is(err, pager.ErrNotMapped))
	// Output:
	// backend chosen: true
	// view page 0: charlie
	// view page 1: bravo
	// view page 2: alpha
	// view page 3: charlie
	// view page 0: file page 2, 1 page(s)
	// view page 1: file page 1, 1 page(s)
	// view page 2: file page 0, 1 page(s)
	// view page 3: file page 2, 1 page(s)
	// ReadAt view page 2: alpha
	// after Unmap: true
}
