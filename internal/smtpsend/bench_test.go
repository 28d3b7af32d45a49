package smtpsend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/sasl"
)

// BenchmarkSendPostfix sends the same messages to the real Postfix
// submission port (XOAUTH2 checked through Dovecot and the fake identity
// provider) over one connection, with Conn.Send and with a bare go-smtp
// loop (taking turns), and reports both rates and their ratio (the figure: the
// overhead of smtpsend itself). Each Send returns when Postfix has
// accepted the message (250 after the end of data).
//
//	go test -run '^$' -bench SendPostfix -benchtime 3x ./internal/smtpsend/
//
// POSTDESK_BENCH_MESSAGES sets the messages per round (default 1000).
func BenchmarkSendPostfix(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("POSTDESK_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	s := mailtest.Start(b, mailtest.Options{Postfix: true})
	const agent = "bench@example.com"
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMessage(agent, "customer@example.net", fmt.Sprintf("Re: Ticket %d", i))
	}
	token := func(context.Context) (string, error) { return s.Token(agent) }
	rcpts := []string{"customer@example.net"}

	// Both connections are open at once and take turns, 50 messages each:
	// the machine's background load (and Postfix delivering to Dovecot
	// meanwhile) falls on both alike.
	const turn = 50
	var ours, bare time.Duration
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		c, err := Dial(context.Background(), Config{
			Addr: s.SubmissionAddr, Security: SecurityNone, Username: agent, Auth: AuthXOAuth2, Token: token,
		})
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(began)

		began = time.Now()
		gc, err := smtp.Dial(s.SubmissionAddr)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := token(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := gc.Auth(sasl.NewXOAuth2Client(agent, tok)); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(began)

		for start := 0; start < n; start += turn {
			batch := msgs[start:min(start+turn, n)]
			viaSmtpsend := func() {
				began := time.Now()
				for i, raw := range batch {
					if err := c.Send(context.Background(), agent, rcpts, raw); err != nil {
						b.Fatalf("smtpsend message %d: %v", start+i, err)
					}
				}
				ours += time.Since(began)
			}
			viaGoSMTP := func() {
				began := time.Now()
				for i, raw := range batch {
					if err := gc.SendMail(agent, rcpts, bytes.NewReader(raw)); err != nil {
						b.Fatalf("go-smtp message %d: %v", start+i, err)
					}
				}
				bare += time.Since(began)
			}
			if start/turn%2 == 0 {
				viaGoSMTP()
				viaSmtpsend()
			} else {
				viaSmtpsend()
				viaGoSMTP()
			}
		}
		began = time.Now()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(began)
		began = time.Now()
		if err := gc.Quit(); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(began)
	}
	b.StopTimer()
	total := float64(n * b.N)
	b.ReportMetric(total/ours.Seconds(), "smtpsend-msgs/s")
	b.ReportMetric(total/bare.Seconds(), "gosmtp-msgs/s")
	b.ReportMetric(ours.Seconds()/bare.Seconds(), "ratio")
	b.Logf("%d messages x %d rounds: smtpsend %v (%.0f msgs/s), bare go-smtp %v (%.0f msgs/s), ratio %.3f",
		n, b.N, ours.Round(time.Millisecond), total/ours.Seconds(), bare.Round(time.Millisecond), total/bare.Seconds(), ours.Seconds()/bare.Seconds())
}
