package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// dialTimeout bounds connecting and signing in to a mail server.
const dialTimeout = time.Minute

// credentials are how a mailbox signs in, for SMTP and IMAP alike.
type credentials struct {
	username      string
	method        string // xoauth2, oauthbearer, plain, login
	token, fresh  func(context.Context) (string, error)
	password      func(context.Context) (string, error)
	providerSaves bool // the server saves submitted mail to Sent itself
}

// credentialsFor builds the sign-in of a mailbox for host (a token goes
// only to a host its provider trusts: every request checks).
func (s *Sender) credentialsFor(ctx context.Context, st *mailboxState, host string) (credentials, error) {
	c := credentials{username: st.mb.Address, method: st.srv.AuthMethod}
	id := st.mb.ID
	switch st.srv.AuthMethod {
	case "xoauth2", "oauthbearer":
		if s.opt.OAuth == nil {
			return c, &smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageAuth, Err: errors.New("no OAuth provider is configured")}
		}
		if err := s.opt.OAuth.CheckHost(ctx, id, host); err != nil {
			return c, &smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageConnect, Err: err}
		}
		c.token = s.opt.OAuth.HostTokenFunc(id, host, false)
		c.fresh = s.opt.OAuth.HostTokenFunc(id, host, true)
		if p, ok := s.opt.OAuth.Provider(st.auth.Provider); ok {
			c.providerSaves = p.Kind == oauth.KindMicrosoft || p.Kind == oauth.KindGoogle
		}
	default:
		if s.opt.Passwords == nil {
			return c, &smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageAuth, Err: store.ErrNoSecretKey}
		}
		if st.srv.Username != "" {
			c.username = st.srv.Username
		} else if st.auth.Account != "" {
			c.username = st.auth.Account
		}
		passwords := s.opt.Passwords
		c.password = func(ctx context.Context) (string, error) { return passwords(ctx, id) }
	}
	return c, nil
}

// session is one SMTP connection for a drain, dialled when first needed
// and again after a failure broke it.
type session struct {
	s    *Sender
	st   *mailboxState
	conn *smtpsend.Conn
}

func (s *Sender) newSession(st *mailboxState) *session { return &session{s: s, st: st} }

// send submits one message. The exchange is not cut short by the drain's
// context (a cancelled send would leave its outcome unknown): each command
// is bounded by smtpsend's timeouts instead.
func (ss *session) send(ctx context.Context, item store.OutboxItem, raw []byte) error {
	ctx = context.WithoutCancel(ctx)
	if ss.conn == nil || !ss.conn.Usable() {
		ss.close()
		srv := ss.st.srv
		cred, err := ss.s.credentialsFor(ctx, ss.st, srv.SMTPHost)
		if err != nil {
			return err
		}
		cfg := smtpsend.Config{Addr: net.JoinHostPort(srv.SMTPHost, strconv.Itoa(srv.SMTPPort)), Security: smtpsend.Security(srv.SMTPSecurity),
			TLSConfig: ss.s.opt.TLSConfig, Username: cred.username, Auth: smtpsend.AuthMethod(cred.method),
			Token: cred.token, RefreshToken: cred.fresh, Password: cred.password,
			Logger: ss.s.log.With("mailbox_id", ss.st.mb.ID)}
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		ss.conn, err = smtpsend.Dial(dctx, cfg)
		cancel()
		if err != nil {
			return err
		}
	}
	return ss.conn.Send(ctx, item.EnvelopeFrom, item.Recipients, raw)
}

func (ss *session) close() {
	if ss.conn != nil {
		ss.conn.Close()
		ss.conn = nil
	}
}

// openSent opens the mailbox's Sent folder over IMAP.
func (s *Sender) openSent(ctx context.Context, st *mailboxState) (*imapsync.Folder, credentials, error) {
	cred, err := s.credentialsFor(ctx, st, st.srv.IMAPHost)
	if err != nil {
		return nil, cred, err
	}
	cfg := imapsync.Config{Addr: net.JoinHostPort(st.srv.IMAPHost, strconv.Itoa(st.srv.IMAPPort)), Security: imapsync.Security(st.srv.IMAPSecurity),
		TLSConfig: s.opt.TLSConfig, Username: cred.username, Auth: imapsync.AuthMethod(cred.method),
		Token: cred.token, RefreshToken: cred.fresh, Password: cred.password, Logger: s.log.With("mailbox_id", st.mb.ID)}
	if cfg.Auth == imapsync.AuthPlain && st.srv.AuthMethod == "login" {
		cfg.Auth = imapsync.AuthLogin
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	f, err := imapsync.OpenSent(dctx, cfg)
	return f, cred, err
}

// resolveUnknown settles messages whose last attempt has no known outcome:
// where the server saves submitted mail to Sent itself, a message found
// there by its Message-ID was sent; every other one is marked unknown, with
// a sentence on its ticket, and is not sent again unless an agent chooses.
func (s *Sender) resolveUnknown(ctx context.Context, st *mailboxState, items []store.OutboxItem, why string) {
	checked := "its server does not keep a copy of sent mail that Postdesk could look for"
	var folder *imapsync.Folder
	if cred, err := s.credentialsFor(ctx, st, st.srv.IMAPHost); err == nil && cred.providerSaves && !st.noSMTP {
		f, _, err := s.openSent(ctx, st)
		if err != nil {
			checked = "its Sent folder could not be searched (" + err.Error() + ")"
			s.log.Warn("open sent folder to settle unknown replies", "mailbox_id", st.mb.ID, "err", err)
		} else {
			folder = f
			defer f.Close()
			checked = "it is not in the Sent folder (yet)"
		}
	}
	for _, item := range items {
		if folder != nil {
			sctx, cancel := context.WithTimeout(ctx, dialTimeout)
			found, err := folder.HasMessageID(sctx, item.MessageID)
			cancel()
			if err == nil && found {
				s.record(ctx, item, func(tx *store.Tx, now time.Time) error { return tx.MarkSent(ctx, item.ID, now, false) })
				s.log.Info("unknown reply found in Sent: recorded sent", "mailbox_id", item.MailboxID, "message_id", item.ID)
				continue
			}
		}
		s.log.Warn("reply's outcome unknown: not sent again until an agent chooses", "mailbox_id", item.MailboxID, "message_id", item.ID)
		s.record(ctx, item, func(tx *store.Tx, now time.Time) error {
			if err := tx.MarkUnknown(ctx, item.ID, why, now); err != nil {
				return err
			}
			if item.TicketID == 0 {
				return nil
			}
			return tx.AddNote(ctx, &store.Note{TicketID: item.TicketID, Kind: store.NoteEvent, CreatedAt: now, Body: unknownSentence(item, why, checked)})
		})
	}
}

// unknownSentence names the single reply whose fate is unknown, and what to do.
func unknownSentence(item store.OutboxItem, why, checked string) string {
	what := "The reply"
	if item.Auto {
		what = "The acknowledgement"
	}
	return fmt.Sprintf("%s written %s to %s (Message-ID <%s>) may or may not have reached them: %s, and %s. "+
		"Ask the customer whether it arrived, then choose Send again or Mark as sent; Postdesk will not send it again by itself.",
		what, item.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), strings.Join(item.Recipients, ", "), item.MessageID, why, checked)
}

// appendCopies appends the copies of sent mail to the Sent folder over
// one IMAP session. A copy that cannot be appended is logged and recorded
// on the mailbox's activity; the mail is never sent again for it.
func (s *Sender) appendCopies(ctx context.Context, st *mailboxState) {
	items, err := s.db.OutboxItems(ctx, st.mb.ID, store.DeliverySent, 0)
	if err != nil {
		s.log.Warn("list copies for Sent", "mailbox_id", st.mb.ID, "err", err)
		return
	}
	var pending []store.OutboxItem
	for _, it := range items {
		if it.CopyPending {
			pending = append(pending, it)
		}
	}
	if len(pending) == 0 {
		return
	}
	f, _, err := s.openSent(ctx, st)
	failed := 0
	for _, item := range pending {
		// After a failure the session may be gone: the rest are not tried.
		if err == nil {
			var raw []byte
			if raw, err = s.readRaw(item); err == nil {
				actx, cancel := context.WithTimeout(ctx, dialTimeout)
				err = f.Append(actx, raw, item.SentAt)
				cancel()
			}
		}
		if err != nil {
			failed++
		}
		s.record(ctx, item, func(tx *store.Tx, now time.Time) error { return tx.MarkCopied(ctx, item.ID) })
	}
	lastErr := err
	if f != nil {
		f.Close()
	}
	if failed > 0 {
		s.log.Warn("copies not appended to Sent (the mail was sent)", "mailbox_id", st.mb.ID, "count", failed, "err", lastErr)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		_ = s.db.RecordMailboxActivity(rctx, store.Activity{MailboxID: st.mb.ID, Kind: store.ActivityError, CreatedAt: s.now(),
			Message: fmt.Sprintf("Sent %d replies, but could not keep a copy in the Sent folder: %v", failed, lastErr)})
	}
}

// needsReauth records that the mail server refused the mailbox's sign-in
// for good (after smtpsend's one retry with a fresh token): oauth records
// an OAuth mailbox's state (it is the only writer of tokens); a password
// mailbox is marked here, as mail sync does.
func (s *Sender) needsReauth(ctx context.Context, st *mailboxState, words string) {
	s.mailboxWide(ctx, st, smtpsend.KindAuthFailed, words)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var err error
	if st.auth.Kind == store.AuthOAuth && s.opt.OAuth != nil {
		err = s.opt.OAuth.ServerRefused(rctx, st.mb.ID, "SMTP: "+words)
	} else {
		err = s.db.Write(rctx, func(tx *store.Tx) error {
			now := s.now()
			msg := "The mail server refused the mailbox's password when sending (" + words + ")."
			if err := tx.SetAuthState(rctx, st.mb.ID, store.AuthNeedsReauth, store.CodePasswordRefused, msg, now); err != nil {
				return err
			}
			return tx.AddNotice(rctx, &store.Notice{MailboxID: st.mb.ID, Kind: string(store.AuthNeedsReauth), Message: st.mb.Address + ": " + msg, CreatedAt: now})
		})
	}
	if err != nil {
		s.log.Error("record refused SMTP sign-in", "mailbox_id", st.mb.ID, "err", err)
	}
}

// mailboxWide records a cause that concerns every message of the mailbox
// (SMTP AUTH disabled, Send As denied, sign-in refused, settings that do
// not work) as a notice for the admins and on the mailbox's activity, once
// per drain.
func (s *Sender) mailboxWide(ctx context.Context, st *mailboxState, kind smtpsend.Kind, words string) {
	if st.told[kind] {
		return
	}
	st.told[kind] = true
	msg := fmt.Sprintf("%s: replies cannot be sent. %s Server said: %s", st.mb.Address, desk.DeliveryAdvice(kind.String()), words)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := s.db.Write(rctx, func(tx *store.Tx) error {
		now := s.now()
		if err := tx.RecordMailboxActivity(rctx, store.Activity{MailboxID: st.mb.ID, Kind: store.ActivityError, Message: msg, CreatedAt: now}); err != nil {
			return err
		}
		if kind == smtpsend.KindAuthFailed {
			return nil // the needs_reauth notice says it
		}
		return tx.AddNotice(rctx, &store.Notice{MailboxID: st.mb.ID, Kind: "smtp_" + kind.String(), Message: msg, CreatedAt: now})
	})
	if err != nil {
		s.log.Error("record mailbox-wide sending failure", "mailbox_id", st.mb.ID, "err", err)
	}
}

// releaseIfSendable queues a mailbox's held mail again once it can send
// (a sign-in or new password recorded elsewhere), and wakes its sender.
func (s *Sender) releaseIfSendable(ctx context.Context, id int64) error {
	a, err := s.db.MailboxAuth(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if desk.Held(a) {
		return nil
	}
	return s.db.Write(ctx, func(tx *store.Tx) error { return s.Authorized(ctx, tx, id) })
}
