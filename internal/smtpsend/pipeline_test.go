package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// gatedConn holds back the server's replies once the client has written
// MAIL, until the client has also written DATA: a client that waits for
// the reply to MAIL before sending RCPT (no pipelining) gets no reply and
// fails after gateWait.
type gatedConn struct {
	net.Conn
	mu       sync.Mutex
	cond     *sync.Cond
	inTx     bool // MAIL written, DATA not yet
	waited   bool // a read found the gate closed for gateWait
	gateWait time.Duration
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if bytes.Contains(p, []byte("MAIL FROM:")) {
		g.inTx = true
	}
	if bytes.Contains(p, []byte("DATA\r\n")) {
		g.inTx = false
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	return g.Conn.Write(p)
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	deadline := time.Now().Add(g.gateWait)
	t := time.AfterFunc(g.gateWait, func() { g.mu.Lock(); g.cond.Broadcast(); g.mu.Unlock() })
	for g.inTx && time.Now().Before(deadline) {
		g.cond.Wait()
	}
	t.Stop()
	if g.inTx {
		g.waited = true
		g.mu.Unlock()
		return 0, errors.New("the client waited for a reply before writing DATA: not pipelined")
	}
	g.mu.Unlock()
	return g.Conn.Read(p)
}

// With a server that offers PIPELINING (RFC 2920), MAIL, RCPT and DATA
// leave in one write, before any of their replies is read; a refused
// recipient is still reported as such, and the connection stays usable.
func TestSendPipelinesCommands(t *testing.T) {
	t.Parallel()
	const nobody = "nobody@example.net"
	f := startFake(t, func(f *fakeServer) {
		f.rcpt = func(to string) error {
			if to == nobody {
				return reply(550, [3]int{5, 1, 1}, "<nobody@example.net>: Recipient address rejected: User unknown")
			}
			return nil
		}
	})
	cfg := f.config(t)
	var gate *gatedConn
	cfg.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		gate = &gatedConn{Conn: c, gateWait: 5 * time.Second}
		gate.cond = sync.NewCond(&gate.mu)
		return gate, nil
	}
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := testMessage(testUser, "jane@example.net", "first")
	if err := c.Send(t.Context(), testUser, []string{"jane@example.net"}, first); err != nil {
		t.Fatalf("send: %v (waited at the gate: %v)", err, gate.waited)
	}
	wantError(t, c.Send(t.Context(), testUser, []string{nobody}, testMessage(testUser, nobody, "refused")),
		KindRecipientUnknown, StageRcpt, 550, "5.1.1")
	if !c.Usable() {
		t.Fatal("connection unusable after a refused recipient")
	}
	second := testMessage(testUser, "jane@example.net", "second")
	if err := c.Send(t.Context(), testUser, []string{"jane@example.net"}, second); err != nil {
		t.Fatalf("send after the refusal: %v", err)
	}
	got := f.received()
	if len(got) != 2 || !bytes.Equal(got[0].raw, first) || !bytes.Equal(got[1].raw, second) {
		t.Fatalf("server received %d messages, want the first and the second", len(got))
	}
}
