package mailtest

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// go-imap v2 has no MULTIAPPEND, which is what makes bulk loading fast
// (tens of thousands of messages per second, see MAILSTACK.md), so Append
// speaks the few IMAP commands it needs on a raw connection: AUTHENTICATE
// PLAIN with an initial response (RFC 4959) and APPEND with several messages
// (RFC 3502) as non-synchronizing literals (LITERAL+, RFC 7888), without
// waiting for a continuation between them.

// Limits of one MULTIAPPEND command.
const (
	appendBatchMessages = 1000
	appendBatchBytes    = 32 << 20
)

// appendItem is one message to append, with optional flags and internal date.
type appendItem struct {
	flags []string
	date  time.Time
	raw   []byte
}

// rawIMAP is a minimal IMAP client connection for Append.
type rawIMAP struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tag  int
	stop func() bool
}

// dialRaw connects and reads the greeting. The connection is closed when ctx
// is done.
func dialRaw(ctx context.Context, addr string) (*rawIMAP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawIMAP{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), w: bufio.NewWriterSize(conn, 256<<10)}
	c.stop = context.AfterFunc(ctx, func() { conn.Close() })
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		c.close()
		return nil, fmt.Errorf("greeting: %q", strings.TrimSpace(line))
	}
	return c, nil
}

func (c *rawIMAP) close() {
	c.stop()
	c.conn.Close()
}

// authPlain is AUTHENTICATE PLAIN (RFC 4616) with authzid, authcid, password.
func (c *rawIMAP) authPlain(authzid, user, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + password))
	tag := c.nextTag()
	fmt.Fprintf(c.w, "%s AUTHENTICATE PLAIN %s\r\n", tag, ir)
	if err := c.w.Flush(); err != nil {
		return err
	}
	if err := c.waitOK(tag); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	return nil
}

// appendAll appends items to mailbox, at most appendBatchMessages or
// appendBatchBytes per command.
func (c *rawIMAP) appendAll(mailbox string, items []appendItem) error {
	quoted, err := quoteMailbox(mailbox)
	if err != nil {
		return err
	}
	for len(items) > 0 {
		n, size := 0, 0
		for n < len(items) && n < appendBatchMessages && (n == 0 || size+len(items[n].raw) <= appendBatchBytes) {
			size += len(items[n].raw)
			n++
		}
		if err := c.appendBatch(quoted, items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// appendBatch sends one APPEND with every item (RFC 3502 3):
// tag APPEND mailbox [(flags)] ["date"] {n+}CRLF message ... CRLF
func (c *rawIMAP) appendBatch(quotedMailbox string, items []appendItem) error {
	tag := c.nextTag()
	fmt.Fprintf(c.w, "%s APPEND %s", tag, quotedMailbox)
	for _, it := range items {
		if len(it.flags) > 0 {
			fmt.Fprintf(c.w, " (%s)", strings.Join(it.flags, " "))
		}
		if !it.date.IsZero() {
			fmt.Fprintf(c.w, " \"%s\"", it.date.Format("_2-Jan-2006 15:04:05 -0700"))
		}
		fmt.Fprintf(c.w, " {%d+}\r\n", len(it.raw))
		c.w.Write(it.raw)
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := c.waitOK(tag); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

func (c *rawIMAP) logout() {
	fmt.Fprintf(c.w, "%s LOGOUT\r\n", c.nextTag())
	c.w.Flush()
}

func (c *rawIMAP) nextTag() string {
	c.tag++
	return "m" + strconv.Itoa(c.tag)
}

// waitOK reads responses until the tagged one, skipping untagged data (and
// any literal it carries), and returns an error unless it is OK.
func (c *rawIMAP) waitOK(tag string) error {
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return err
		}
		for strings.HasSuffix(line, "}\r\n") { // a literal follows: skip it
			i := strings.LastIndexByte(line, '{')
			n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-3], "+"))
			if i < 0 || err != nil {
				break
			}
			if _, err := c.r.Discard(n); err != nil {
				return err
			}
			if line, err = c.r.ReadString('\n'); err != nil {
				return err
			}
		}
		rest, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			if strings.HasPrefix(line, "+") {
				return errors.New("unexpected continuation request")
			}
			continue
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, "OK") {
			return errors.New(rest)
		}
		return nil
	}
}

// quoteMailbox returns mailbox as an IMAP quoted string. Only ASCII names
// without "&" are supported (others need modified UTF-7, RFC 3501 5.1.3).
func quoteMailbox(mailbox string) (string, error) {
	for _, r := range mailbox {
		if r >= 0x7f || r < 0x20 || r == '&' {
			return "", fmt.Errorf("mailbox %q: only printable ASCII names without & are supported", mailbox)
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(mailbox) + `"`, nil
}
