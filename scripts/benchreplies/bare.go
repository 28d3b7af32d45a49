package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/sasl"
)

// outgoing is one composed message as the sender submits it.
type outgoing struct {
	MessageID string
	From      string
	To        []string
	Raw       []byte
}

// composed reads back the messages Postdesk queued (the exact bytes it
// sent), in the order it sent them.
func (e *env) composed(ctx context.Context, messageIDs []int64) ([]outgoing, error) {
	out := make([]outgoing, 0, len(messageIDs))
	for _, id := range messageIDs {
		item, err := e.db.OutboxItem(ctx, id)
		if err != nil {
			return nil, err
		}
		f, err := e.db.Blobs().Open(ctx, item.RawSHA256)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, outgoing{MessageID: item.MessageID, From: item.EnvelopeFrom, To: item.Recipients, Raw: raw})
	}
	return out, nil
}

func (e *env) tlsConfigOrNil() *tls.Config {
	if e.security == "none" {
		return nil
	}
	return e.stack.TLSConfig()
}

// bareLoop is the baseline: a bare go-smtp client that connects once to the
// same submission port with the same security and the same XOAUTH2 sign-in
// (the mailbox's access token) and sends msgs one after another. It returns
// the time from dialling to the last 250.
func (e *env) bareLoop(ctx context.Context, msgs []outgoing) (time.Duration, error) {
	token, err := e.oauth.TokenFor(ctx, e.mb.ID)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	var c *smtp.Client
	switch e.security {
	case "starttls":
		c, err = smtp.DialStartTLS(e.stack.SubmissionAddr, e.tlsConfigOrNil())
	default:
		c, err = smtp.Dial(e.stack.SubmissionAddr)
	}
	if err != nil {
		return 0, fmt.Errorf("bare loop: dial: %w", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewXOAuth2Client(supportAddr, token)); err != nil {
		return 0, fmt.Errorf("bare loop: auth: %w", err)
	}
	for i, m := range msgs {
		if err := c.SendMail(m.From, m.To, bytes.NewReader(m.Raw)); err != nil {
			return 0, fmt.Errorf("bare loop: message %d: %w", i, err)
		}
	}
	took := time.Since(began)
	if err := c.Quit(); err != nil {
		return 0, fmt.Errorf("bare loop: quit: %w", err)
	}
	return took, nil
}
