package raftstore_test

import (
	"fmt"
	"log"
	"os"

	"github.com/hashicorp/raft"

	"github.com/ringlog/ringlog/raftstore"
)

// A store holds a raft log and raft's stable values: entries stored in a
// batch, read back, a conflicting suffix deleted and written again, and
// everything still there after reopening.
func Example() {
	dir, err := os.MkdirTemp("", "raftstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := raftstore.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	var batch []*raft.Log
	for i := uint64(1); i <= 5; i++ {
		batch = append(batch, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(nil, "set x=%d", i)})
	}
	if err := s.StoreLogs(batch); err != nil { // durable when it returns
		log.Fatal(err)
	}
	// A new leader's entries replace 4 and 5.
	if err := s.DeleteRange(4, 5); err != nil {
		log.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 4, Term: 2, Data: []byte("set x=40")}); err != nil {
		log.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		log.Fatal(err)
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	s, err = raftstore.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	term, _ := s.GetUint64([]byte("CurrentTerm"))
	fmt.Printf("entries %d..%d, current term %d\n", first, last, term)
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d (term %d): %s\n", l.Index, l.Term, l.Data)
	}
	fmt.Println(s.GetLog(5, &l) == raft.ErrLogNotFound)
	// Output:
	// entries 1..4, current term 2
	// 1 (term 1): set x=1
	// 2 (term 1): set x=2
	// 3 (term 1): set x=3
	// 4 (term 2): set x=40
	// true
}
