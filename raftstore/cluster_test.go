package raftstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// listFSM is a state machine that keeps every command it applied, in
// order.
type listFSM struct {
	mu   sync.Mutex
	cmds [][]byte
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, bytes.Clone(l.Data))
	return len(f.cmds)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listSnapshot(slices.Clone(f.cmds)), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	var cmds [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("bad snapshot")
		}
		cmds = append(cmds, bytes.Clone(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = cmds
	return nil
}

func (f *listFSM) snapshot() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

type listSnapshot [][]byte

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	var b []byte
	for _, c := range s {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// node is one member of a test cluster.
type node struct {
	id    raft.ServerID
	dir   string
	store *Store
	fsm   *listFSM
	trans *raft.InmemTransport
	raft  *raft.Raft
	// kept is what the store held when the node stopped: a restart must
	// find exactly that before raft runs on it.
	kept *nodeStore
}

// nodeStore is a store's entries and current term.
type nodeStore struct {
	first, last uint64
	logs        []raft.Log
	term        uint64
}

func nodeStoreOf(t *testing.T, s *Store) *nodeStore {
	t.Helper()
	c := &nodeStore{}
	var err error
	if c.first, err = s.FirstIndex(); err != nil {
		t.Fatal(err)
	}
	if c.last, err = s.LastIndex(); err != nil {
		t.Fatal(err)
	}
	for i := c.first; i <= c.last && c.last > 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d of [%d, %d]: %v", i, c.first, c.last, err)
		}
		c.logs = append(c.logs, l)
	}
	if c.term, err = s.GetUint64([]byte("CurrentTerm")); err != nil {
		t.Fatal(err)
	}
	return c
}

func clusterConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	// Short timeouts, but long enough that a slow fdatasync on a busy
	// machine (tens of milliseconds) does not cost the leader its lease.
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	// Applies queue up to MaxAppendEntries, so the leader stores them in
	// batches (one StoreLogs, one sync each).
	c.BatchApplyCh = true
	// Snapshots and log compaction (DeleteRange of prefixes) while the
	// test runs; a follower restarted late catches up from a snapshot.
	c.SnapshotInterval = 100 * time.Millisecond
	c.SnapshotThreshold = 1024
	c.TrailingLogs = 256
	c.Logger = hclog.NewNullLogger()
	return c
}

// start opens the node's store from its directory and starts raft on it.
func (n *node) start(t *testing.T) {
	t.Helper()
	var err error
	if n.store, err = Open(filepath.Join(n.dir, "raft"), &Options{SegmentSize: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	if n.kept != nil {
		got := nodeStoreOf(t, n.store)
		if got.first != n.kept.first || got.last != n.kept.last || got.term != n.kept.term || len(got.logs) != len(n.kept.logs) {
			t.Fatalf("%s restarted with entries [%d, %d] and term %d; it stopped with [%d, %d] and term %d",
				n.id, got.first, got.last, got.term, n.kept.first, n.kept.last, n.kept.term)
		}
		for i := range got.logs {
			if !sameLog(&got.logs[i], &n.kept.logs[i]) {
				t.Fatalf("%s restarted with entry %d changed", n.id, got.logs[i].Index)
			}
		}
	}
	snaps, err := raft.NewFileSnapshotStore(n.dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n.fsm = &listFSM{}
	_, n.trans = raft.NewInmemTransport(raft.ServerAddress(n.id))
	if n.raft, err = raft.NewRaft(clusterConfig(n.id), n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		t.Fatal(err)
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	n.trans.Close()
	n.kept = nodeStoreOf(t, n.store)
	if n.kept.last == 0 {
		t.Fatalf("%s stopped with an empty log", n.id)
	}
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
}

// connect links every pair of nodes' transports.
func connect(nodes []*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*node) *node {
	t.Helper()
	var l *node
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func cmd(i int) []byte { return fmt.Appendf(nil, "command %d", i) }

// apply applies commands lo..hi-1 through the leader, all at once, and
// waits for every one.
func apply(t *testing.T, leader *node, lo, hi int) {
	t.Helper()
	fs := make([]raft.ApplyFuture, 0, hi-lo)
	for i := lo; i < hi; i++ {
		fs = append(fs, leader.raft.Apply(cmd(i), 10*time.Second))
	}
	for i, f := range fs {
		if err := f.Error(); err != nil {
			t.Fatalf("apply %d: %v", lo+i, err)
		}
	}
}

// checkFSM waits until n's state machine has applied commands 0..count-1
// and checks them.
func checkFSM(t *testing.T, n *node, count int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to apply %d commands", n.id, count), func() bool { return len(n.fsm.snapshot()) >= count })
	got := n.fsm.snapshot()
	if len(got) != count {
		t.Fatalf("%s applied %d commands, want %d", n.id, len(got), count)
	}
	for i, c := range got {
		if !bytes.Equal(c, cmd(i)) {
			t.Fatalf("%s: command %d is %q, want %q", n.id, i, c, cmd(i))
		}
	}
}

// A three-node cluster on raftstore: a leader is elected, 10,000
// commands reach every state machine; a follower shut down misses 2,000
// more, restarts from its own store and catches up.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of three")
	}
	base := t.TempDir()
	nodes := make([]*node, 3)
	var servers []raft.Server
	for i := range nodes {
		id := raft.ServerID(fmt.Sprintf("node%d", i))
		nodes[i] = &node{id: id, dir: filepath.Join(base, string(id))}
		servers = append(servers, raft.Server{ID: id, Address: raft.ServerAddress(id)})
	}
	for _, n := range nodes {
		n.start(t)
	}
	connect(nodes)
	defer func() {
		for _, n := range nodes {
			if n.raft != nil {
				n.raft.Shutdown().Error()
				n.store.Close()
			}
		}
	}()
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	leader := leaderOf(t, nodes)
	const first, more = 10_000, 2_000
	apply(t, leader, 0, first)
	for _, n := range nodes {
		checkFSM(t, n, first)
	}

	// Stop a follower, apply more without it, restart it from its
	// directory.
	var f *node
	for _, n := range nodes {
		if n != leader {
			f = n
			break
		}
	}
	f.stop(t)
	f.raft = nil
	apply(t, leader, first, first+more)
	f.start(t)
	connect(nodes)
	for _, n := range nodes {
		checkFSM(t, n, first+more)
	}
	// The leader compacted its log meanwhile, so the follower may have
	// caught up from a snapshot, after which raft deleted its whole log:
	// a few more commands give every log entries to compare.
	const last100 = first + more + 100
	apply(t, leader, first+more, last100)
	for _, n := range nodes {
		checkFSM(t, n, last100)
	}
	// Every store holds the same entries where their logs overlap.
	last, err := leader.store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the follower's log to reach the leader's", func() bool {
		l, _ := f.store.LastIndex()
		return l >= last
	})
	for _, n := range nodes {
		lo, _ := n.store.FirstIndex()
		hi, _ := n.store.LastIndex()
		if lo == 0 || hi < last {
			t.Fatalf("%s holds [%d, %d], the leader's last entry is %d", n.id, lo, hi, last)
		}
		llo, _ := leader.store.FirstIndex()
		var a, b raft.Log
		for i := max(lo, llo, last-200); i <= last; i++ {
			if err := n.store.GetLog(i, &a); err != nil {
				t.Fatalf("%s: GetLog(%d): %v", n.id, i, err)
			}
			if err := leader.store.GetLog(i, &b); err != nil {
				t.Fatalf("leader: GetLog(%d): %v", i, err)
			}
			if a.Term != b.Term || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("%s: entry %d differs from the leader's", n.id, i)
			}
		}
	}
	for _, n := range nodes {
		st := n.store.Stats()
		t.Logf("%s: entries [%d, %d], %d bytes of log, %d appends, %.1f records per sync",
			n.id, st.FirstIndex, st.LastIndex, st.LogBytes, st.Log.Appends, st.Log.RecordsPerSync)
	}
}
