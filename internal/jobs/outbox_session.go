package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

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

// send submits one message once ready agrees (its attempt is recorded):
// a connection is dialled only after that, the message's end only after
// that (smtpsend.Conn.SendWhen). The exchange is not cut short by the
// drain's context (a cancelled send would leave its outcome unknown): each
// command is bounded by smtpsend's timeouts instead.
func (ss *session) send(ctx context.Context, item store.OutboxItem, raw []byte, ready func() error) error {
	ctx = context.WithoutCancel(ctx)
	if ss.conn == nil || !ss.conn.Usable() {
		if err := ready(); err != nil {
			return err
		}
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
	return ss.conn.SendWhen(ctx, item.EnvelopeFrom, item.Recipients, raw, ready)
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
	if st.srv.SendsWithGraph() {
		s.resolveUnknownGraph(ctx, st, items, why)
		return
	}
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
	s.settleUnknown(ctx, items, why, func() string { return checked }, func(item store.OutboxItem) bool {
		if folder == nil {
			return false
		}
		sctx, cancel := context.WithTimeout(ctx, dialTimeout)
		found, err := folder.HasMessageID(sctx, item.MessageID)
		cancel()
		return err == nil && found
	}, func() bool { return folder != nil })
}

// resolveUnknownGraph is resolveUnknown for a mailbox that sends through
// Graph: its Sent Items are searched through Graph.
func (s *Sender) resolveUnknownGraph(ctx context.Context, st *mailboxState, items []store.OutboxItem, why string) {
	var searchErr error
	checked := func() string {
		if searchErr != nil { // a mailbox that only sends through Graph may not read its mail (403)
			return "its Sent Items could not be searched (" + searchErr.Error() + ")"
		}
		return "it is not in Sent Items (yet)"
	}
	s.settleUnknown(ctx, items, why, checked, func(item store.OutboxItem) bool {
		if searchErr != nil {
			return false
		}
		found, err := s.graphSent(ctx, st, item.MessageID)
		if err != nil {
			searchErr = err
			s.log.Warn("search Sent Items to settle unknown replies", "mailbox_id", st.mb.ID, "err", err)
		}
		return found
	}, func() bool { return searchErr == nil })
}

// settleUnknown records each item found (by found) as sent, and every
// other one as unknown, with a sentence on its ticket. When Sent can be
// searched (lookAgain, asked before each further look), one not found is looked for again after each of
// SenderOptions.SentLookAgain: Microsoft 365 and Gmail file a message in
// Sent some seconds after accepting it, so a first look just after a lost
// connection almost never finds it, and "unknown" asks an agent to choose
// Send again for a reply that did arrive.
func (s *Sender) settleUnknown(ctx context.Context, items []store.OutboxItem, why string, checked func() string, found func(store.OutboxItem) bool, lookAgain func() bool) {
	for _, wait := range append([]time.Duration{0}, s.opt.SentLookAgain...) {
		if wait > 0 {
			if !lookAgain() {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-s.stop:
			case <-t.C:
			}
			t.Stop()
			if ctx.Err() != nil || s.stopped() {
				// Stopping: left "sending", so the next drain (this process
				// started again, or another) looks in Sent again, rather
				// than calling them unknown before their time.
				return
			}
		}
		var notYet []store.OutboxItem
		for _, item := range items {
			if !found(item) {
				notYet = append(notYet, item)
				continue
			}
			s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
				return tx.MarkSent(ctx, item.ID, now, false)
			})
			s.log.Info("unknown "+item.What()+" found in Sent: recorded sent", "mailbox_id", item.MailboxID, "message_id", item.ID)
		}
		if items = notYet; len(items) == 0 {
			return
		}
	}
	for _, item := range items {
		s.log.Warn(item.What()+"'s outcome unknown: not sent again until an agent chooses", "mailbox_id", item.MailboxID, "message_id", item.ID)
		s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
			if err := tx.MarkUnknown(ctx, item.ID, why, now); err != nil {
				return err
			}
			if item.TicketID == 0 {
				return nil
			}
			return tx.AddNote(ctx, &store.Note{TicketID: item.TicketID, Kind: store.NoteEvent, CreatedAt: now, Body: unknownSentence(item, why, checked())})
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

// copyBatch is how many copies for the Sent folder a drain reads at once.
const copyBatch = 100

// maxCopyTries: a copy that could not be appended in this many drains is
// given up (the mail was sent; it is never sent again for its copy).
const maxCopyTries = 3

// appendCopies appends the due copies of sent mail to the Sent folder,
// oldest first, batch after batch over one IMAP session, recording each
// batch appended. The first failure ends it: the copy that failed (every
// due copy, when the folder could not be opened) counts a try, the others
// wait for a later drain (SenderOptions.Backoff), and copies that had
// maxCopyTries are given up with a line in the mailbox's activity.
func (s *Sender) appendCopies(ctx context.Context, st *mailboxState) {
	var f *imapsync.Folder
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	now := s.now()
	var after int64
	for ctx.Err() == nil && !s.stopped() {
		items, err := s.db.PendingCopies(ctx, st.mb.ID, after, now, copyBatch)
		if err != nil {
			s.log.Warn("list copies for Sent", "mailbox_id", st.mb.ID, "err", err)
			return
		}
		if len(items) == 0 {
			return
		}
		if f == nil {
			if f, _, err = s.openSent(ctx, st); err != nil {
				f = nil
				s.copyFailed(ctx, st, nil, items[0], true, err)
				return
			}
		}
		var done []int64
		for _, item := range items {
			raw, err := s.readRaw(ctx, item)
			if err != nil {
				err = fmt.Errorf("read the sent email's stored source: %w", err)
			} else {
				actx, cancel := context.WithTimeout(ctx, dialTimeout)
				err = f.Append(actx, raw, item.SentAt)
				cancel()
			}
			if err != nil {
				s.copyFailed(ctx, st, done, item, false, err)
				return
			}
			done = append(done, item.ID)
		}
		s.recordCopies(ctx, st, done, nil)
		after = items[len(items)-1].ID
	}
}

// recordCopies records copies appended and then fn (when given), in one
// transaction, even when ctx was cancelled meanwhile.
func (s *Sender) recordCopies(ctx context.Context, st *mailboxState, done []int64, fn func(ctx context.Context, tx *store.Tx) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := s.db.Write(rctx, func(tx *store.Tx) error {
		if err := tx.MarkCopied(rctx, done...); err != nil {
			return err
		}
		if fn == nil {
			return nil
		}
		return fn(rctx, tx)
	})
	if err != nil {
		s.log.Error("record copies kept in Sent", "mailbox_id", st.mb.ID, "count", len(done), "err", err)
	}
}

// copyFailed records the copies appended before a failure and the failure:
// failed's copy counts a try (every due copy when all: the folder could not
// be opened), the rest wait.
func (s *Sender) copyFailed(ctx context.Context, st *mailboxState, done []int64, failed store.OutboxItem, all bool, cause error) {
	which := failed.ID
	if all {
		which = 0
	}
	var gaveUp int
	s.recordCopies(ctx, st, done, func(ctx context.Context, tx *store.Tx) (err error) {
		now := s.now()
		gaveUp, err = tx.CopyFailed(ctx, st.mb.ID, which, now, now.Add(s.backoff(failed.CopyAttempts+1)), maxCopyTries)
		if err != nil || gaveUp == 0 {
			return err
		}
		return tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: st.mb.ID, Kind: store.ActivityError, CreatedAt: now,
			Message: fmt.Sprintf("Sent %d replies, but could not keep a copy in the Sent folder after %d tries: %v", gaveUp, maxCopyTries, cause)})
	})
	s.log.Warn("copy not appended to Sent (the mail was sent)", "mailbox_id", st.mb.ID, "message_id", failed.ID,
		"try", failed.CopyAttempts+1, "given_up", gaveUp, "err", cause)
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
		via := "SMTP: "
		if st.srv.SendsWithGraph() {
			via = "" // words start with "Microsoft Graph: "
		}
		err = s.opt.OAuth.ServerRefused(rctx, st.mb.ID, via+words)
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
	advice := mailboxAdvice(kind)
	if st.srv.SendsWithGraph() && kind == smtpsend.KindConfig {
		advice = "Microsoft Graph refused to send for this mailbox; replies are tried again."
	}
	msg := fmt.Sprintf("%s: replies cannot be sent. %s Server said: %s", st.mb.Address, advice, words)
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
	if errors.Is(err, store.ErrNotFound) {
		// Removed (its sign-in forgotten): nothing will send its held
		// mail, which the drain fails, saying why. It was "released after
		// sign-in" first, in the log, though nobody signed in.
		s.Wake(id)
		return nil
	}
	if err != nil {
		return err
	}
	if a.HoldsReplies() {
		return nil
	}
	return s.db.Write(ctx, func(tx *store.Tx) error { return s.Authorized(ctx, tx, id) })
}

// mailboxAdvice tells admins what to do about a cause that stops every
// reply of a mailbox.
func mailboxAdvice(kind smtpsend.Kind) string {
	switch kind {
	case smtpsend.KindAuthDisabled:
		return "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center (Users → the mailbox → Mail → Manage email apps)."
	case smtpsend.KindSendAsDenied:
		return "The signed-in account may not send as this address: grant it Send As on the mailbox, or sign in as the mailbox itself."
	case smtpsend.KindAuthFailed:
		return "The mail server refused the mailbox's sign-in: reauthenticate it in Admin → Emails; its replies are held until then."
	case smtpsend.KindConfig:
		return "The mailbox's SMTP settings do not work: check them in Admin → Emails; replies are tried again."
	}
	return ""
}
