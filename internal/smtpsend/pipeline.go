package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"
)

// Command pipelining (RFC 2920). go-smtp's Client waits for each reply
// before the next command; a server that offers PIPELINING takes MAIL,
// every RCPT and DATA in one write and answers them in order, so a message
// costs two round trips (the commands, then the data) instead of three or
// more. That matters little on loopback and much on the way to Microsoft
// 365 or Gmail. The replies are read by a reader of this package on the
// same connection: each exchange is read to its end by the reader of the
// side that wrote it, so neither reader ever holds bytes of the other's.

// pipeline is this package's own reader and writer on the secured
// connection, beside go-smtp's.
type pipeline struct {
	tp *textproto.Conn
}

// pipelines reports whether the server offers PIPELINING.
func (c *Conn) pipelines() bool {
	ok, _ := c.c.Extension("PIPELINING")
	return ok && c.pl != nil
}

// sendPipelined is SendWhen's exchange with a server that pipelines.
// With one recipient, DATA goes in the same write as MAIL and RCPT (if
// RCPT is refused, so is DATA: the server has no recipient). With several,
// DATA waits for the replies to MAIL and RCPT: a server that took DATA
// after refusing one recipient would leave no way out of the transaction
// but closing the connection, and all recipients or none is the rule.
func (c *Conn) sendPipelined(ctx context.Context, from string, to []string, raw []byte, utf8 bool, ready func() error) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "MAIL FROM:<%s>", from)
	if ok, _ := c.c.Extension("8BITMIME"); ok {
		sb.WriteString(" BODY=8BITMIME")
	}
	if utf8 {
		sb.WriteString(" SMTPUTF8")
	}
	sb.WriteString("\r\n")
	for _, rcpt := range to {
		fmt.Fprintf(&sb, "RCPT TO:<%s>\r\n", rcpt)
	}
	withData := len(to) == 1
	if withData {
		sb.WriteString("DATA\r\n")
	}
	tp := c.pl.tp
	defer c.sc.SetDeadline(time.Time{})
	// Each reply is awaited up to CommandTimeout, as go-smtp's are.
	read := func(expect int) (string, error) {
		c.sc.SetDeadline(time.Now().Add(c.cfg.CommandTimeout))
		_, msg, err := tp.ReadResponse(expect)
		return msg, err
	}
	c.sc.SetDeadline(time.Now().Add(c.cfg.CommandTimeout))
	if _, err := tp.W.WriteString(sb.String()); err != nil {
		return c.fail(ctx, StageMail, "", err)
	}
	if err := tp.W.Flush(); err != nil {
		return c.fail(ctx, StageMail, "", err)
	}
	// Every reply is read, even after a refusal, so that none is left for
	// the next command.
	var refused *Error
	refuse := func(stage, rcpt string, err error) error {
		var pe *textproto.Error
		closing := !errors.As(err, &pe) || pe.Code == 421 // lost, or the server is closing (RFC 5321 3.8)
		switch {
		case closing && refused != nil:
			// The transaction was refused already: that refusal is the
			// outcome, as when the RSET after it fails.
			c.broken = err
			return refused
		case closing && pe == nil:
			return c.fail(ctx, stage, rcpt, err)
		case closing:
			return c.fail(ctx, stage, rcpt, toSMTPError(pe))
		}
		if refused == nil {
			refused = c.refusal(stage, rcpt, toSMTPError(pe))
		}
		return nil
	}
	if _, err := read(250); err != nil {
		if ferr := refuse(StageMail, "", err); ferr != nil {
			return ferr
		}
	}
	for _, rcpt := range to {
		if _, err := read(25); err != nil {
			if ferr := refuse(StageRcpt, rcpt, err); ferr != nil {
				return ferr
			}
		}
	}
	if !withData && refused == nil {
		if err := tp.PrintfLine("DATA"); err != nil {
			return c.fail(ctx, StageData, "", err)
		}
		withData = true
	}
	if withData {
		_, err := read(354)
		switch {
		case err == nil && refused != nil:
			// Only possible with a server that accepts DATA with no
			// recipient: the transaction cannot be left but by closing.
			c.broken = fmt.Errorf("closed in DATA after a refusal: %w", refused)
			c.raw.Close()
			return refused
		case err != nil:
			if ferr := refuse(StageData, "", err); ferr != nil {
				return ferr
			}
		}
	}
	if refused != nil {
		return c.reset(refused)
	}
	w := tp.DotWriter()
	if err := c.writeData(ctx, w, raw, ready); err != nil {
		return err
	}
	// RFC 5321 4.1.1.4: the end of data, then the server's reply.
	failures := c.raw.writeFailures()
	err := w.Close()
	var reply string
	if err == nil {
		c.sc.SetDeadline(time.Now().Add(DataEndTimeout))
		_, reply, err = tp.ReadResponse(250)
	}
	if err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			return c.fail(ctx, StageData, "", toSMTPError(pe))
		}
		return c.dataEndLost(ctx, err, failures)
	}
	c.log.Debug("smtp message accepted", "bytes", len(raw), "recipients", len(to), "pipelined", true,
		"reply", oneLine(reply))
	return nil
}

// newPipeline opens this package's reader and writer on the secured
// connection, once go-smtp has finished the hello and authentication.
func newPipeline(sc io.ReadWriteCloser) *pipeline {
	return &pipeline{tp: textproto.NewConn(limitedConn{ReadWriteCloser: sc, r: &lineLimitReader{r: sc, max: maxReplyLine}})}
}

// maxReplyLine is the longest reply line read, as go-smtp's reader allows
// (RFC 5321 sets 512 octets): a server that never ends a line must not make
// the reader's buffer grow without bound.
const maxReplyLine = 2000

var errReplyLineTooLong = errors.New("the server's reply line is longer than 2,000 bytes")

type limitedConn struct {
	io.ReadWriteCloser
	r io.Reader
}

func (c limitedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// lineLimitReader fails once a line passes max bytes without its end.
type lineLimitReader struct {
	r        io.Reader
	max, cur int
}

func (l *lineLimitReader) Read(b []byte) (int, error) {
	if l.cur > l.max {
		return 0, errReplyLineTooLong
	}
	n, err := l.r.Read(b)
	for _, c := range b[:n] {
		if c == '\n' {
			l.cur = 0
			continue
		}
		if l.cur++; l.cur > l.max {
			return 0, errReplyLineTooLong
		}
	}
	return n, err
}
