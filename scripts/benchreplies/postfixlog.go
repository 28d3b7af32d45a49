package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"
)

// postfixLog follows the stack's Postfix log and writes down, with the time
// each line was seen, what the server side says: a message accepted into
// the queue (qmgr's "queue active" line, which comes once the queue file is
// committed, i.e. once smtpd may answer 250; joined to the Message-ID that
// cleanup logged for the same queue id), a message delivered to Dovecot and
// removed from the queue, and each connection to the submission port.
type postfixLog struct {
	path string
	f    *os.File
	buf  []byte

	mu       sync.Mutex
	msgID    map[string]string // queue id -> Message-ID (without <>), until accepted
	accepted []acceptance
	removed  int
	connects int
	wake     chan struct{} // closed and replaced on every new event
}

// acceptance is one message the server accepted.
type acceptance struct {
	MessageID string
	Seen      time.Time
}

var (
	reCleanup = regexp.MustCompile(`/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=<([^>]*)>`)
	reActive  = regexp.MustCompile(`/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)`)
	reRemoved = regexp.MustCompile(`/qmgr\[\d+\]: ([0-9A-Za-z]+): removed`)
	reConnect = regexp.MustCompile(`/submissions?/smtpd\[\d+\]: connect from `)
)

// followPostfixLog starts following path from its current end; it polls
// every 2 ms until ctx ends.
func followPostfixLog(ctx context.Context, path string) (*postfixLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the Postfix log: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	l := &postfixLog{path: path, f: f, msgID: map[string]string{}, wake: make(chan struct{})}
	go l.run(ctx)
	return l, nil
}

func (l *postfixLog) run(ctx context.Context) {
	defer l.f.Close()
	chunk := make([]byte, 64<<10)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		for {
			n, _ := l.f.Read(chunk)
			if n == 0 {
				break
			}
			l.buf = append(l.buf, chunk[:n]...)
			now := time.Now()
			for {
				i := bytes.IndexByte(l.buf, '\n')
				if i < 0 {
					break
				}
				l.line(l.buf[:i], now)
				l.buf = l.buf[i+1:]
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *postfixLog) line(b []byte, seen time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := true
	if m := reCleanup.FindSubmatch(b); m != nil {
		l.msgID[string(m[1])] = string(m[2])
		changed = false
	} else if m := reActive.FindSubmatch(b); m != nil {
		qid := string(m[1])
		id, ok := l.msgID[qid]
		if !ok {
			return
		}
		delete(l.msgID, qid)
		l.accepted = append(l.accepted, acceptance{MessageID: id, Seen: seen})
	} else if reRemoved.Match(b) {
		l.removed++
	} else if reConnect.Match(b) {
		l.connects++
	} else {
		changed = false
	}
	if changed {
		close(l.wake)
		l.wake = make(chan struct{})
	}
}

// mark is a position in the log's events, to count what came after it.
type mark struct{ accepted, removed, connects int }

func (l *postfixLog) mark() mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return mark{len(l.accepted), l.removed, l.connects}
}

// since returns the acceptances after m, the messages removed from the
// queue (delivered) and the submission connections after m.
func (l *postfixLog) since(m mark) (acc []acceptance, removed, connects int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acceptance(nil), l.accepted[m.accepted:]...), l.removed - m.removed, l.connects - m.connects
}

// waitFor waits, at most within, until cond (called under the lock after
// every event) holds.
func (l *postfixLog) waitFor(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeoutCause(ctx, within, fmt.Errorf("not within %s", within))
	defer cancel()
	for {
		l.mu.Lock()
		ok, wake := cond(), l.wake
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Postfix (%s): %w", what, context.Cause(ctx))
		case <-wake:
		}
	}
}

// waitAccepted waits until every one of ids was accepted after m and
// returns when the last one was seen; it fails when one was accepted twice.
func (l *postfixLog) waitAccepted(ctx context.Context, within time.Duration, m mark, ids map[string]bool) (time.Time, error) {
	var last time.Time
	var dup string
	got := map[string]bool{}
	next := m.accepted
	err := l.waitFor(ctx, within, fmt.Sprintf("%d messages accepted", len(ids)), func() bool {
		for ; next < len(l.accepted); next++ {
			a := l.accepted[next]
			if !ids[a.MessageID] {
				continue
			}
			if got[a.MessageID] {
				dup = a.MessageID
				return true
			}
			got[a.MessageID] = true
			last = a.Seen
		}
		return len(got) == len(ids)
	})
	if err == nil && dup != "" {
		err = fmt.Errorf("Postfix accepted <%s> twice", dup)
	}
	return last, err
}

// waitIdle waits until every message accepted so far has been delivered
// and removed from the queue, so that the next measurement does not share
// the machine with the deliveries of the previous one.
func (l *postfixLog) waitIdle(ctx context.Context, within time.Duration) error {
	return l.waitFor(ctx, within, "queue empty", func() bool { return l.removed >= len(l.accepted) })
}
