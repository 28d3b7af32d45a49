package imapsync

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
)

// ErrSessionEnded is the server ending a session normally while Postdesk
// waited for mail: an untagged BYE (RFC 9051 7.1.5) during IDLE or between
// polls, as Exchange Online sends hourly and Dovecot after a long
// inactivity. Run reconnects without reporting an error.
var ErrSessionEnded = errors.New("imap server ended the session")

// byeWatch keeps the end of what the server sent, to tell a BYE followed by
// a close from a connection that broke. It is the client's DebugWriter, so
// it also sees what the client sends, credentials included: it keeps only
// the last few hundred bytes, in memory, and never logs them.
type byeWatch struct {
	mu   sync.Mutex
	tail []byte
}

const byeTail = 512

func (w *byeWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if len(p) > byeTail {
		p = p[len(p)-byeTail:]
	}
	w.tail = append(w.tail, p...)
	if len(w.tail) > byeTail {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-byeTail:]...)
	}
	return n, nil
}

// ended returns ErrSessionEnded with the server's text if the last line
// received was an untagged BYE.
func (w *byeWatch) ended() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := bytes.TrimRight(w.tail, "\r\n")
	if i := bytes.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	const bye = "* BYE"
	if len(last) < len(bye) || !bytes.EqualFold(last[:len(bye)], []byte(bye)) {
		return nil
	}
	text := string(bytes.TrimSpace(last[len(bye):]))
	if len(text) > 200 {
		text = text[:200]
	}
	return fmt.Errorf("%w: %q", ErrSessionEnded, text)
}
