package mailtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/sasl"
)

// Message is a message read back from a folder.
type Message struct {
	UID          uint32
	Flags        []string // IMAP flags (\Seen, ...), without \Recent
	InternalDate time.Time
	Raw          []byte
}

// defaultWait bounds the helpers' waits when ctx has no deadline.
const defaultWait = 10 * time.Second

// Deliver delivers raw to rcpt over Dovecot's LMTP (RFC 2033), as Postfix
// would: the message is in the mailbox when Deliver returns. The envelope
// sender is the From address of raw (Dovecot adds it as Return-Path).
func (s *Stack) Deliver(ctx context.Context, rcpt string, raw []byte) error {
	c, done, err := dialSMTP(ctx, s.LMTPAddr, true)
	if err != nil {
		return fmt.Errorf("mailtest: deliver: %w", err)
	}
	defer done()
	if err := send(c, envelopeFrom(raw), []string{rcpt}, raw); err != nil {
		return fmt.Errorf("mailtest: deliver to %s: %w", rcpt, err)
	}
	return nil
}

// SendSMTP sends raw through Postfix's unauthenticated port (mail "from the
// internet", trusted by mynetworks). Postfix then delivers it to Dovecot over
// LMTP: use WaitMessages to see it arrive.
func (s *Stack) SendSMTP(ctx context.Context, from string, to []string, raw []byte) error {
	if s.SMTPAddr == "" {
		return errors.New("mailtest: send: the stack runs no Postfix (Options.Postfix)")
	}
	c, done, err := dialSMTP(ctx, s.SMTPAddr, false)
	if err != nil {
		return fmt.Errorf("mailtest: send: %w", err)
	}
	defer done()
	if err := send(c, from, to, raw); err != nil {
		return fmt.Errorf("mailtest: send: %w", err)
	}
	return nil
}

// dialSMTP connects an SMTP (or LMTP) client and says hello. The connection
// is closed when ctx is done, or by calling done.
func dialSMTP(ctx context.Context, addr string, lmtp bool) (c *smtp.Client, done func(), err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	done = func() {
		stop()
		c.Close()
	}
	if err := c.Hello("localhost"); err != nil {
		done()
		return nil, nil, err
	}
	return c, done, nil
}

// send runs one mail transaction and QUIT.
func send(c *smtp.Client, from string, to []string, raw []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// envelopeFrom is raw's From address, or a stand-in.
func envelopeFrom(raw []byte) string {
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		if a, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
			return a.Address
		}
	}
	return "mailtest@example.test"
}

// Append loads msgs into user's mailbox with IMAP MULTIAPPEND (1,000 per
// command), the fast way to set up fixtures. secret is the user's password or
// an access token (Dovecot's oauth2 passdb also accepts a token as a PLAIN
// password); empty logs in as the stack's master user instead.
func (s *Stack) Append(ctx context.Context, user, secret, mailbox string, msgs [][]byte) error {
	items := make([]appendItem, len(msgs))
	for i, m := range msgs {
		items[i].raw = m
	}
	if err := s.appendItems(ctx, user, secret, mailbox, items); err != nil {
		return fmt.Errorf("mailtest: append to %s of %s: %w", mailbox, user, err)
	}
	return nil
}

func (s *Stack) appendItems(ctx context.Context, user, secret, mailbox string, items []appendItem) error {
	c, err := dialRaw(ctx, s.IMAPAddr)
	if err != nil {
		return err
	}
	defer c.close()
	if secret == "" {
		err = c.authPlain(user, s.masterUser, s.masterPass)
	} else {
		err = c.authPlain("", user, secret)
	}
	if err != nil {
		return err
	}
	if err := c.appendAll(mailbox, items); err != nil {
		return err
	}
	c.logout()
	return nil
}

// imapAs logs in to Dovecot as user through the stack's master user. The
// client is closed when ctx is done, or by calling done.
func (s *Stack) imapAs(ctx context.Context, user string) (c *imapclient.Client, done func(), err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.IMAPAddr)
	if err != nil {
		return nil, nil, err
	}
	c = imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	done = func() {
		stop()
		c.Close()
	}
	if err := c.Authenticate(sasl.NewPlainClient(user, s.masterUser, s.masterPass)); err != nil {
		done()
		return nil, nil, fmt.Errorf("log in as %s: %w", user, err)
	}
	return c, done, nil
}

// Messages returns every message in user's mailbox in UID order, read with
// BODY.PEEK[] (flags are left as they are).
func (s *Stack) Messages(ctx context.Context, user, mailbox string) ([]Message, error) {
	c, done, err := s.imapAs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("mailtest: messages: %w", err)
	}
	defer done()
	msgs, _, err := fetchAll(c, mailbox)
	if err != nil {
		return nil, fmt.Errorf("mailtest: messages of %s in %s: %w", user, mailbox, err)
	}
	c.Logout().Wait()
	return msgs, nil
}

// fetchAll examines mailbox and fetches every message and the UIDVALIDITY.
func fetchAll(c *imapclient.Client, mailbox string) ([]Message, uint32, error) {
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, 0, err
	}
	if sel.NumMessages == 0 {
		return nil, sel.UIDValidity, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	bufs, err := c.Fetch(all, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		return nil, 0, err
	}
	msgs := make([]Message, 0, len(bufs))
	for _, b := range bufs {
		m := Message{UID: uint32(b.UID), InternalDate: b.InternalDate}
		for _, f := range b.Flags {
			if !strings.EqualFold(string(f), `\Recent`) {
				m.Flags = append(m.Flags, string(f))
			}
		}
		if len(b.BodySection) > 0 {
			m.Raw = b.BodySection[0].Bytes
		}
		msgs = append(msgs, m)
	}
	return msgs, sel.UIDValidity, nil
}

// UIDValidity returns the UIDVALIDITY of user's mailbox (RFC 9051 2.3.1.1).
func (s *Stack) UIDValidity(ctx context.Context, user, mailbox string) (uint32, error) {
	c, done, err := s.imapAs(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("mailtest: uidvalidity: %w", err)
	}
	defer done()
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("mailtest: uidvalidity of %s in %s: %w", user, mailbox, err)
	}
	c.Logout().Wait()
	return st.UIDValidity, nil
}

// WaitMessages polls user's mailbox until it holds at least n messages and
// returns them all, or fails when ctx is done (after 10 s if ctx has no
// deadline). The mailbox may not exist yet.
func (s *Stack) WaitMessages(ctx context.Context, user, mailbox string, n int) ([]Message, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	c, done, err := s.imapAs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("mailtest: wait for messages: %w", err)
	}
	defer done()
	have := -1
	for {
		st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err == nil && st.NumMessages != nil {
			have = int(*st.NumMessages)
			if have >= n {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mailtest: wait for %d messages of %s in %s (have %d): %w", n, user, mailbox, have, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
	msgs, _, err := fetchAll(c, mailbox)
	if err != nil {
		return nil, fmt.Errorf("mailtest: wait for messages of %s in %s: %w", user, mailbox, err)
	}
	c.Logout().Wait()
	return msgs, nil
}

// RecreateFolder changes the UIDVALIDITY of user's folder while keeping its
// messages (content, flags, internal dates), as a server whose folder was
// recreated or whose index was rebuilt does. A folder other than INBOX is
// deleted, created and refilled: its UIDs start again at 1. INBOX cannot be
// deleted: it is emptied, given a new UIDVALIDITY with doveadm, and refilled.
// It returns the new UIDVALIDITY.
func (s *Stack) RecreateFolder(ctx context.Context, user, folder string) (uint32, error) {
	uv, err := s.recreateFolder(ctx, user, folder)
	if err != nil {
		return 0, fmt.Errorf("mailtest: recreate %s of %s: %w", folder, user, err)
	}
	return uv, nil
}

func (s *Stack) recreateFolder(ctx context.Context, user, folder string) (uint32, error) {
	c, done, err := s.imapAs(ctx, user)
	if err != nil {
		return 0, err
	}
	defer done()
	msgs, old, err := fetchAll(c, folder)
	if err != nil {
		return 0, err
	}
	if err := c.Unselect().Wait(); err != nil {
		return 0, err
	}
	if strings.EqualFold(folder, "INBOX") {
		if err := emptyFolder(c, folder); err != nil {
			return 0, err
		}
		c.Logout().Wait()
		uv := max(old+1, uint32(time.Now().Unix()))
		out, err := exec.CommandContext(ctx, doveadmBin, "-c", s.dovecotConf(), "mailbox", "update",
			"-u", user, "--uid-validity", strconv.FormatUint(uint64(uv), 10), folder).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("doveadm mailbox update: %w: %s", err, bytes.TrimSpace(out))
		}
	} else {
		if err := c.Delete(folder).Wait(); err != nil {
			return 0, fmt.Errorf("delete: %w", err)
		}
		if err := c.Create(folder, nil).Wait(); err != nil {
			return 0, fmt.Errorf("create: %w", err)
		}
		c.Logout().Wait()
	}
	items := make([]appendItem, len(msgs))
	for i, m := range msgs {
		items[i] = appendItem{flags: m.Flags, date: m.InternalDate, raw: m.Raw}
	}
	if err := s.appendItems(ctx, user, "", folder, items); err != nil {
		return 0, err
	}
	uv, err := s.UIDValidity(ctx, user, folder)
	if err != nil {
		return 0, err
	}
	if uv == old {
		return 0, fmt.Errorf("UIDVALIDITY is still %d", uv)
	}
	return uv, nil
}

// emptyFolder expunges every message of folder.
func emptyFolder(c *imapclient.Client, folder string) error {
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		return err
	}
	if sel.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0)
		store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := c.Store(all, store, nil).Close(); err != nil {
			return fmt.Errorf("store \\Deleted: %w", err)
		}
		if err := c.Expunge().Close(); err != nil {
			return fmt.Errorf("expunge: %w", err)
		}
	}
	return c.Unselect().Wait()
}
