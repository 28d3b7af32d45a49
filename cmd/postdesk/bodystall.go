package main

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// bodyStall is how long a request body may send nothing before its read
// fails. A slow upload that keeps sending is never cut; a client that
// sends headers and then holds the body back (one way to tie up a server's
// connections) is dropped after it.
const bodyStall = 30 * time.Second

// stalledBodies bounds the silence within a request body: each read of it
// may wait up to stall for the next bytes. http.Server's ReadTimeout would
// bound the whole request instead, cutting a large upload on a slow line.
func stalledBodies(next http.Handler, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(stall)); err != nil {
			next.ServeHTTP(w, r) // a connection without deadlines: as before
			return
		}
		r.Body = &stallBody{ReadCloser: r.Body, rc: rc, stall: stall}
		next.ServeHTTP(w, r)
	})
}

// stallBody moves the connection's read deadline on with every read, and
// lifts it at the end of the body: the server's own read that watches for
// the client going away, after the body, must not time out while a long
// handler runs (it would cancel the request's context).
type stallBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	done  bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	b.rc.SetReadDeadline(time.Now().Add(b.stall))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
