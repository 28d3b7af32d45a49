package storetest

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

// OpenCuttable opens a fresh, migrated PostgreSQL database through a TCP
// relay on loopback, and returns it with cut, which makes the database out
// of reach as a lost network or a stopped server does: open connections
// break and new ones are refused. (Skipped as NewPostgresDatabase is.)
func OpenCuttable(t testing.TB) (db *store.DB, cut func()) {
	t.Helper()
	u, err := url.Parse(NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	cut = func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(cut)
	u.Host = ln.Addr().String()
	db, err = store.Open(context.Background(), store.Config{DataDir: t.TempDir(), DatabaseURL: u.String()})
	if err != nil {
		t.Fatalf("open postgres through the relay: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres through the relay: %v", err)
	}
	return db, cut
}
