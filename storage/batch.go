package storage

import (
	"encoding/binary"
	"fmt"
	"iter"
)

// Kind is the kind of a batch operation.
type Kind uint8

// Operation kinds. Their values are part of the ringlog engine's log
// format: frozen.
const (
	KindPut    Kind = 1
	KindDelete Kind = 2
)

// Batch collects writes to apply atomically with Engine.Apply. The zero
// value is an empty batch. A Batch is for one goroutine; Put and Delete
// copy their arguments.
//
// Encoding (what Ops reads back): for each operation, kind (1 byte),
// key length and value length (uvarints), key, value.
type Batch struct {
	data []byte
	n    int
	size int // key and value bytes
	err  error
}

// Put adds a put of key to value.
func (b *Batch) Put(key, value []byte) {
	b.add(KindPut, key, value)
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) {
	b.add(KindDelete, key, nil)
}

func (b *Batch) add(k Kind, key, value []byte) {
	if b.err != nil {
		return
	}
	if err := CheckSizes(key, value); err != nil {
		b.err = fmt.Errorf("storage: batch operation %d: %w", b.n, err)
		return
	}
	b.data = append(b.data, byte(k))
	b.data = binary.AppendUvarint(b.data, uint64(len(key)))
	b.data = binary.AppendUvarint(b.data, uint64(len(value)))
	b.data = append(b.data, key...)
	b.data = append(b.data, value...)
	b.n++
	b.size += len(key) + len(value)
}

// Len is the number of operations in the batch.
func (b *Batch) Len() int { return b.n }

// Size is the number of key and value bytes in the batch.
func (b *Batch) Size() int { return b.size }

// Err is the first error a Put or Delete met (a key or value too large);
// Apply refuses a batch with an error and writes none of it.
func (b *Batch) Err() error { return b.err }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.data, b.n, b.size, b.err = b.data[:0], 0, 0, nil
}

// Op is one operation of a batch. Key and Value alias the batch's memory.
type Op struct {
	Kind  Kind   // KindPut or KindDelete
	Key   []byte // the key written or deleted
	Value []byte // the value put; empty for a delete
}

// Ops returns the batch's operations in order.
func (b *Batch) Ops() iter.Seq[Op] {
	return func(yield func(Op) bool) {
		d := b.data
		for len(d) > 0 {
			k := Kind(d[0])
			kl, n1 := binary.Uvarint(d[1:])
			vl, n2 := binary.Uvarint(d[1+n1:])
			d = d[1+n1+n2:]
			op := Op{Kind: k, Key: d[:kl:kl], Value: d[kl : kl+vl : kl+vl]}
			d = d[kl+vl:]
			if !yield(op) {
				return
			}
		}
	}
}

// All returns the iterator's pairs from First on, in ascending order. The
// slices are valid only during the yield (copy to keep them). Check
// it.Error() after the loop.
func All(it Iterator) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for ok := it.First(); ok; ok = it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// Backward returns the iterator's pairs from Last on, in descending order;
// see All.
func Backward(it Iterator) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for ok := it.Last(); ok; ok = it.Prev() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}
