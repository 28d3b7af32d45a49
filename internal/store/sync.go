package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MailboxServer is how a mailbox is fetched (and, later, how replies are sent).
type MailboxServer struct {
	MailboxID       int64
	IMAPHost        string
	IMAPPort        int
	IMAPSecurity    string // tls, starttls, none
	SMTPHost        string
	SMTPPort        int
	SMTPSecurity    string
	AuthMethod      string // xoauth2, oauthbearer, plain, login
	Username        string // login name when it differs from the address
	Folders         []string
	AfterProcessing string // leave, seen, move
	MoveTo          string
	InitialDays     int
	MaxAgeDays      int
	Enabled         bool
	// SaveSent: after sending, APPEND a copy to the Sent folder (servers
	// that do not save submitted mail themselves, unlike Microsoft 365 and
	// Gmail).
	SaveSent bool
	// FetchTransport is how mail is fetched (TransportIMAP or
	// TransportGraph), SendTransport how replies are sent (TransportSMTP
	// or TransportGraph); "" reads as IMAP and SMTP.
	FetchTransport, SendTransport string
	UpdatedAt                     time.Time
}

// Transports a mailbox can choose, for fetching and for sending.
const (
	TransportIMAP  = "imap"
	TransportSMTP  = "smtp"
	TransportGraph = "graph" // Microsoft Graph (Microsoft 365 mailboxes only)
)

// FetchesWithGraph reports whether the mailbox fetches through Microsoft Graph.
func (m MailboxServer) FetchesWithGraph() bool { return m.FetchTransport == TransportGraph }

// SendsWithGraph reports whether the mailbox sends through Microsoft Graph.
func (m MailboxServer) SendsWithGraph() bool { return m.SendTransport == TransportGraph }

const serverCols = `mailbox_id, imap_host, imap_port, imap_security, smtp_host, smtp_port, smtp_security, auth_method,
	username, folders, after_processing, move_to, initial_days, max_age_days, enabled, save_sent, fetch_transport, send_transport, updated_at`

func scanServer(s interface{ Scan(...any) error }) (MailboxServer, error) {
	var m MailboxServer
	var folders string
	var updated int64
	err := s.Scan(&m.MailboxID, &m.IMAPHost, &m.IMAPPort, &m.IMAPSecurity, &m.SMTPHost, &m.SMTPPort, &m.SMTPSecurity,
		&m.AuthMethod, &m.Username, &folders, &m.AfterProcessing, &m.MoveTo, &m.InitialDays, &m.MaxAgeDays, &m.Enabled, &m.SaveSent, &m.FetchTransport, &m.SendTransport, &updated)
	m.Folders = strings.Split(folders, "\n")
	m.UpdatedAt = fromMS(updated)
	return m, err
}

// PutMailboxServer creates or replaces a mailbox's server settings.
func (tx *Tx) PutMailboxServer(ctx context.Context, m MailboxServer) error {
	if len(m.Folders) == 0 {
		m.Folders = []string{"INBOX"}
	}
	if m.AfterProcessing == "" {
		m.AfterProcessing = "leave"
	}
	if m.SMTPSecurity == "" {
		m.SMTPSecurity = "starttls"
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = time.Now()
	}
	if m.FetchTransport == "" {
		m.FetchTransport = TransportIMAP
	}
	if m.SendTransport == "" {
		m.SendTransport = TransportSMTP
	}
	_, err := tx.exec(ctx, `INSERT INTO mailbox_servers (`+serverCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET imap_host = excluded.imap_host, imap_port = excluded.imap_port,
		imap_security = excluded.imap_security, smtp_host = excluded.smtp_host, smtp_port = excluded.smtp_port,
		smtp_security = excluded.smtp_security, auth_method = excluded.auth_method, username = excluded.username,
		folders = excluded.folders, after_processing = excluded.after_processing, move_to = excluded.move_to,
		initial_days = excluded.initial_days, max_age_days = excluded.max_age_days, enabled = excluded.enabled,
		save_sent = excluded.save_sent, fetch_transport = excluded.fetch_transport,
		send_transport = excluded.send_transport, updated_at = excluded.updated_at`,
		m.MailboxID, m.IMAPHost, m.IMAPPort, m.IMAPSecurity, m.SMTPHost, m.SMTPPort, m.SMTPSecurity, m.AuthMethod,
		m.Username, strings.Join(m.Folders, "\n"), m.AfterProcessing, m.MoveTo, m.InitialDays, m.MaxAgeDays, m.Enabled, m.SaveSent,
		m.FetchTransport, m.SendTransport, ms(m.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save server settings of mailbox %d: %w", m.MailboxID, err)
	}
	tx.AfterCommit(tx.db.mailboxesChanged)
	return nil
}

// MailboxServer returns a mailbox's server settings.
func (c conn) MailboxServer(ctx context.Context, mailboxID int64) (MailboxServer, error) {
	m, err := scanServer(c.queryRow(ctx, `SELECT `+serverCols+` FROM mailbox_servers WHERE mailbox_id = ?`, mailboxID))
	return m, one(err)
}

// SyncedMailboxIDs lists the mailboxes that have enabled server settings.
func (c conn) SyncedMailboxIDs(ctx context.Context) ([]int64, error) {
	rows, err := c.query(ctx, `SELECT mailbox_id FROM mailbox_servers WHERE enabled = ? ORDER BY mailbox_id`, true)
	if err != nil {
		return nil, fmt.Errorf("list synced mailboxes: %w", err)
	}
	return scanInt64s(rows)
}

// SyncCursor returns how far a folder of a mailbox has been fetched: an
// opaque cursor that only the transport which wrote it reads; "" when the
// folder was never fetched.
func (c conn) SyncCursor(ctx context.Context, mailboxID int64, folder string) (string, error) {
	var cursor string
	err := one(c.queryRow(ctx, `SELECT fetch_cursor FROM sync_checkpoints WHERE mailbox_id = ? AND folder = ?`, mailboxID, folder).Scan(&cursor))
	if err == ErrNotFound {
		return "", nil
	}
	return cursor, err
}

// SetSyncCursor records a folder's cursor. Mail sync calls it in the
// transaction that commits (or quarantines) the messages it moves past.
func (tx *Tx) SetSyncCursor(ctx context.Context, mailboxID int64, folder, cursor string, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO sync_checkpoints (mailbox_id, folder, fetch_cursor, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (mailbox_id, folder) DO UPDATE SET fetch_cursor = excluded.fetch_cursor, updated_at = excluded.updated_at`,
		mailboxID, folder, cursor, ms(at))
	if err != nil {
		return fmt.Errorf("save cursor of mailbox %d folder %s: %w", mailboxID, folder, err)
	}
	return nil
}

// AcquireLease takes or renews the right to sync a mailbox until expires.
// It succeeds when the mailbox has no lease, the lease has expired, or
// owner already holds it.
func (tx *Tx) AcquireLease(ctx context.Context, mailboxID int64, owner string, now, expires time.Time) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO sync_leases (mailbox_id, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE sync_leases.owner = excluded.owner OR sync_leases.expires_at < ?`,
		mailboxID, owner, ms(expires), ms(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease on mailbox %d: %w", mailboxID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease gives up a lease held by owner.
func (tx *Tx) ReleaseLease(ctx context.Context, mailboxID int64, owner string) error {
	_, err := tx.exec(ctx, `DELETE FROM sync_leases WHERE mailbox_id = ? AND owner = ?`, mailboxID, owner)
	return err
}

// LeaseOwner returns who holds a mailbox's lease ("" when nobody holds a live one).
func (c conn) LeaseOwner(ctx context.Context, mailboxID int64, now time.Time) (string, error) {
	var owner string
	err := one(c.queryRow(ctx, `SELECT owner FROM sync_leases WHERE mailbox_id = ? AND expires_at >= ?`, mailboxID, ms(now)).Scan(&owner))
	if err == ErrNotFound {
		return "", nil
	}
	return owner, err
}

// SyncStatus is how a mailbox's sync is doing.
type SyncStatus struct {
	MailboxID     int64
	State         SyncState
	Owner         string
	LastSuccessAt time.Time
	LastError     string
	LastErrorAt   time.Time
	Day           string // UTC date of MessagesDay
	MessagesDay   int
	UpdatedAt     time.Time
}

// SyncStatus returns a mailbox's sync status (zero when it never synced).
func (c conn) SyncStatus(ctx context.Context, mailboxID int64) (SyncStatus, error) {
	s := SyncStatus{MailboxID: mailboxID, State: SyncIdle}
	var success, errAt, updated int64
	var state string
	err := one(c.queryRow(ctx, `SELECT state, owner, last_success_at, last_error, last_error_at, day, messages_day, updated_at
		FROM sync_status WHERE mailbox_id = ?`, mailboxID).Scan(&state, &s.Owner, &success, &s.LastError, &errAt, &s.Day, &s.MessagesDay, &updated))
	if err == ErrNotFound {
		return s, nil
	}
	s.State = SyncState(state)
	s.LastSuccessAt, s.LastErrorAt, s.UpdatedAt = fromMS(success), fromMS(errAt), fromMS(updated)
	return s, err
}

// PutSyncStatus records a mailbox's sync status. A new error (not the
// one recorded before) is also an entry of the mailbox's activity. A sync
// that starts failing after it worked (or that never worked) adds a
// mailbox.sync_failed event: once, not at every retry; only a success
// (a state that is up to date) after the error arms it again.
func (tx *Tx) PutSyncStatus(ctx context.Context, s SyncStatus) error {
	if s.State == SyncError {
		var prevState, prevErr string
		var prevSuccess, prevErrAt int64
		found := true
		err := tx.queryRow(ctx, `SELECT state, last_error, last_success_at, last_error_at FROM sync_status WHERE mailbox_id = ?`+tx.d.forUpdate(),
			s.MailboxID).Scan(&prevState, &prevErr, &prevSuccess, &prevErrAt)
		if errors.Is(err, sql.ErrNoRows) {
			found, prevState = false, string(SyncIdle)
		} else if err != nil {
			return fmt.Errorf("read sync status of mailbox %d: %w", s.MailboxID, err)
		}
		at := s.LastErrorAt
		if at.IsZero() {
			at = s.UpdatedAt
		}
		if s.LastError != "" && prevErr != s.LastError {
			if err := tx.RecordMailboxActivity(ctx, Activity{MailboxID: s.MailboxID, Kind: ActivityError, Message: s.LastError, CreatedAt: at}); err != nil {
				return err
			}
		}
		if !found || prevErrAt == 0 || prevSuccess > prevErrAt {
			if err := tx.AddEvent(ctx, &Event{Kind: EventMailboxSyncFailed, MailboxID: s.MailboxID, CreatedAt: at,
				Data: map[string]any{"state": string(SyncError), "previous": prevState}}); err != nil {
				return err
			}
		}
	}
	_, err := tx.exec(ctx, `INSERT INTO sync_status (mailbox_id, state, owner, last_success_at, last_error, last_error_at, day, messages_day, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox_id) DO UPDATE SET state = excluded.state, owner = excluded.owner,
		last_success_at = excluded.last_success_at, last_error = excluded.last_error, last_error_at = excluded.last_error_at,
		day = excluded.day, messages_day = excluded.messages_day, updated_at = excluded.updated_at`,
		s.MailboxID, string(s.State), s.Owner, ms(s.LastSuccessAt), s.LastError, ms(s.LastErrorAt), s.Day, s.MessagesDay, ms(s.UpdatedAt))
	return err
}

// Fetched is a batch of messages a sync committed: how many, and when the
// oldest and newest of them arrived at the mail server.
type Fetched struct {
	Count    int
	From, To time.Time // zero when unknown
}

// CountSyncedMessages adds a committed batch to today's message count of a
// mailbox, and to its activity: batches committed within fetchWindow of
// each other are one entry, "fetched N messages", or a catch-up ("that
// arrived between ...") when the oldest arrived more than catchUpAge ago.
func (tx *Tx) CountSyncedMessages(ctx context.Context, mailboxID int64, f Fetched, now time.Time) error {
	n := f.Count
	if n > 0 {
		if err := tx.recordFetch(ctx, mailboxID, f, now); err != nil {
			return err
		}
	}
	day := now.UTC().Format(time.DateOnly)
	_, err := tx.exec(ctx, `INSERT INTO sync_status (mailbox_id, day, messages_day, last_success_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET
		messages_day = CASE WHEN sync_status.day = excluded.day THEN sync_status.messages_day + excluded.messages_day ELSE excluded.messages_day END,
		day = excluded.day, last_success_at = excluded.last_success_at, updated_at = excluded.updated_at`,
		mailboxID, day, n, ms(now), ms(now))
	return err
}

// RemoveMailbox stops a mailbox's sync and forgets its credentials and
// sync state. When no message was ever stored for it, the mailbox itself
// is deleted too (deleted reports that); otherwise it stays for its tickets.
func (tx *Tx) RemoveMailbox(ctx context.Context, mailboxID int64) (deleted bool, err error) {
	tx.AfterCommit(tx.db.mailboxesChanged)
	for _, table := range []string{"mailbox_servers", "mailbox_auth", "sync_checkpoints", "sync_leases", "sync_status", "oauth_states", "outbox_leases"} {
		if _, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE mailbox_id = ?`, mailboxID); err != nil {
			return false, fmt.Errorf("remove mailbox %d from %s: %w", mailboxID, table, err)
		}
	}
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE mailbox_id = ?`, mailboxID).Scan(&n); err != nil {
		return false, err
	}
	var t int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM tickets WHERE mailbox_id = ?`, mailboxID).Scan(&t); err != nil {
		return false, err
	}
	if n > 0 || t > 0 {
		// Its tickets keep their mailbox: the row stays, marked removed.
		if _, err := tx.exec(ctx, `UPDATE mailboxes SET removed_at = ? WHERE id = ?`, ms(time.Now().UTC()), mailboxID); err != nil {
			return false, fmt.Errorf("mark mailbox %d removed: %w", mailboxID, err)
		}
		return false, nil
	}
	if _, err := tx.exec(ctx, `DELETE FROM mailboxes WHERE id = ?`, mailboxID); err != nil {
		return false, fmt.Errorf("delete mailbox %d: %w", mailboxID, err)
	}
	return true, nil
}

// Heartbeat records that owner's syncer is alive and returns how many
// syncers are (those seen since 'since', this one included); older
// heartbeats are removed.
func (tx *Tx) Heartbeat(ctx context.Context, owner string, now, since time.Time) (live int, err error) {
	if _, err := tx.exec(ctx, `INSERT INTO sync_processes (owner, seen_at) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at`, owner, ms(now)); err != nil {
		return 0, fmt.Errorf("record sync heartbeat: %w", err)
	}
	if _, err := tx.exec(ctx, `DELETE FROM sync_processes WHERE seen_at < ?`, ms(since)); err != nil {
		return 0, err
	}
	err = tx.queryRow(ctx, `SELECT COUNT(*) FROM sync_processes`).Scan(&live)
	return live, err
}

// RemoveHeartbeat forgets a syncer that stops.
func (tx *Tx) RemoveHeartbeat(ctx context.Context, owner string) error {
	_, err := tx.exec(ctx, `DELETE FROM sync_processes WHERE owner = ?`, owner)
	return err
}

// LiveSyncers lists the serve processes seen since since (by their sync
// owner names), most recent first. On PostgreSQL a process counts only
// while its lock connection is open, so one that died is not listed.
func (c conn) LiveSyncers(ctx context.Context, since time.Time) ([]string, error) {
	q := `SELECT owner FROM sync_processes WHERE seen_at >= ? ORDER BY seen_at DESC`
	if c.d.name() == "postgres" {
		q = `SELECT p.owner FROM sync_processes p JOIN pg_stat_activity a
			ON a.pid = p.backend_pid AND (extract(epoch FROM a.backend_start) * 1000)::bigint = p.backend_start
			WHERE p.seen_at >= ? ORDER BY p.seen_at DESC`
	}
	rows, err := c.query(ctx, q, ms(since))
	if err != nil {
		return nil, fmt.Errorf("list running serve processes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// MailboxesChanged is signalled (at most one signal waits) after the
// commit of a change to a mailbox's server settings (saved, paused,
// resumed) or its removal: mail sync lists the mailboxes again at once
// instead of at its next refresh.
func (db *DB) MailboxesChanged() <-chan struct{} { return db.settingsChanged }

func (db *DB) mailboxesChanged() {
	select {
	case db.settingsChanged <- struct{}{}:
	default:
	}
}
