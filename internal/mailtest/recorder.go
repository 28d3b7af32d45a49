package mailtest

import (
	"bufio"
	"encoding/base64"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// IMAPRecorder is a fake IMAP server on 127.0.0.1 that writes down every
// line clients send and refuses every sign-in. It stands where an
// attacker's server would, to prove that a mailbox's token never reaches
// it; where the real server would, to prove that a test would have seen
// one. It speaks just enough IMAP4rev1 (RFC 9051) for a client to try to
// authenticate: the greeting with capabilities (SASL-IR, XOAUTH2,
// OAUTHBEARER, PLAIN), CAPABILITY, ID, AUTHENTICATE (with or without an
// initial response), LOGIN and LOGOUT.
type IMAPRecorder struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	lines []string // every line received, in order
	conns int
}

// NewIMAPRecorder starts a recorder; it stops at the test's cleanup.
func NewIMAPRecorder(t testing.TB) *IMAPRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imap recorder: %v", err)
	}
	r := &IMAPRecorder{ln: ln}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

// Host is the recorder's IP address (127.0.0.1).
func (r *IMAPRecorder) Host() string { return r.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the recorder's port.
func (r *IMAPRecorder) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Addr is host:port.
func (r *IMAPRecorder) Addr() string { return r.ln.Addr().String() }

// Connections counts the connections accepted so far.
func (r *IMAPRecorder) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// Received is every line received so far.
func (r *IMAPRecorder) Received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

var bearerRE = regexp.MustCompile(`(?i)auth=bearer ([^\x01\s]+)`)

// Bearers are the bearer tokens received so far: in the clear, or in a
// base64 SASL response (XOAUTH2 "user=..^Aauth=Bearer T^A^A", OAUTHBEARER
// RFC 7628 "n,a=..,^Aauth=Bearer T^A^A").
func (r *IMAPRecorder) Bearers() []string {
	var out []string
	for _, line := range r.Received() {
		texts := []string{line}
		for _, word := range strings.Fields(line) {
			if b, err := base64.StdEncoding.DecodeString(word); err == nil {
				texts = append(texts, string(b))
			}
		}
		for _, s := range texts {
			for _, m := range bearerRE.FindAllStringSubmatch(s, -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func (r *IMAPRecorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns++
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			r.serve(c)
		}()
	}
}

const recorderCaps = "IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER AUTH=PLAIN ID"

func (r *IMAPRecorder) serve(c net.Conn) {
	in := bufio.NewReaderSize(c, 64<<10)
	write := func(s string) bool {
		_, err := c.Write([]byte(s + "\r\n"))
		return err == nil
	}
	read := func() (string, bool) {
		line, err := in.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" || err == nil {
			r.mu.Lock()
			r.lines = append(r.lines, line)
			r.mu.Unlock()
		}
		return line, err == nil
	}
	if !write("* OK [CAPABILITY " + recorderCaps + "] recorder ready") {
		return
	}
	for {
		line, ok := read()
		if !ok {
			return
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			write("* CAPABILITY " + recorderCaps)
			write(tag + " OK CAPABILITY done")
		case "ID":
			write("* ID NIL")
			write(tag + " OK ID done")
		case "NOOP":
			write(tag + " OK NOOP done")
		case "AUTHENTICATE":
			if _, ir, _ := strings.Cut(args, " "); ir == "" {
				// RFC 9051 6.2.2: no initial response, ask for it.
				if !write("+ ") {
					return
				}
				if _, ok := read(); !ok {
					return
				}
			}
			write(tag + " NO [AUTHENTICATIONFAILED] recorder refuses every sign-in")
		case "LOGIN":
			write(tag + " NO [AUTHENTICATIONFAILED] recorder refuses every sign-in")
		case "LOGOUT":
			write("* BYE recorder closing")
			write(tag + " OK LOGOUT done")
			return
		default:
			write(tag + " BAD " + strconv.Quote(cmd) + " not understood by the recorder")
		}
	}
}
