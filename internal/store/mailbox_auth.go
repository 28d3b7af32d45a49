package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// AuthKind is how a mailbox signs in to its mail server.
type AuthKind string

// Auth kinds.
const (
	AuthNone     AuthKind = "none"
	AuthOAuth    AuthKind = "oauth"
	AuthPassword AuthKind = "password"
)

// AuthState is a mailbox authorization's health, as shown to admins.
type AuthState string

// Authorization states.
const (
	// AuthOK: authorized, nothing due soon.
	AuthOK AuthState = "ok"
	// AuthExpiring: a deadline is within the warning lead (or the
	// re-authentication is overdue while the provider still accepts it).
	AuthExpiring AuthState = "expiring"
	// AuthNeedsReauth: the provider refused for good; fetching stops until
	// an admin signs in again.
	AuthNeedsReauth AuthState = "needs_reauth"
	// AuthProviderFault: the provider refused the application (client
	// secret); fixed in the provider settings, not by signing in.
	AuthProviderFault AuthState = "provider_fault"
)

// MailboxAuth is how one mailbox is authorized. Secrets are sealed by the
// Vault (bound with MailboxSecret); the store never sees them in the clear.
type MailboxAuth struct {
	MailboxID int64
	Address   string // the mailbox's address (read only, from mailboxes)
	Kind      AuthKind
	Provider  string
	// Account is who signed in: the address itself, or a delegate for a
	// shared mailbox; for a password mailbox, the login name.
	Account            string
	PasswordSealed     string
	RefreshTokenSealed string
	AccessTokenSealed  string
	AccessExpiresAt    time.Time
	// GraphAccessTokenSealed is the access token for Microsoft Graph (one
	// refresh token serves both resources; each has its own access token).
	GraphAccessTokenSealed string
	GraphAccessExpiresAt   time.Time
	// GrantedScopes are the scopes the last sign-in asked for, space
	// separated ("": signed in before they were recorded); see Granted.
	GrantedScopes string
	AuthorizedAt  time.Time
	LastRefreshAt time.Time
	ExpiresAt     time.Time // last successful refresh + provider inactivity window
	// ReauthMaxAge: nil uses the provider's default; 0 means until revoked.
	ReauthMaxAge *time.Duration
	ReauthDueAt  time.Time
	State        AuthState
	Error        string // plain words, for admins
	ErrorCode    string // e.g. "AADSTS700082", "invalid_grant"
	ErrorAt      time.Time
	WarnedState  AuthState // the state last notified
	UpdatedAt    time.Time
}

// Resources an OAuth access token is for (RefreshedTokens.Resource).
const (
	ResourceMail  = ""      // the mail servers: IMAP and SMTP
	ResourceGraph = "graph" // Microsoft Graph
)

// MailboxSecret is the vault binding of a mailbox's sealed column: name is
// "password", "refresh_token" or "access_token".
func MailboxSecret(mailboxID int64, name string) string {
	return SecretBinding("mailbox", mailboxID, name)
}

// OAuthStateSecret is the vault binding of a pending sign-in's verifier.
func OAuthStateSecret(stateHash string) string {
	return SecretBinding("oauth_state", stateHash, "verifier")
}

const mailboxAuthCols = `a.mailbox_id, m.address, a.kind, a.provider, a.account, a.password_sealed,
	a.refresh_token_sealed, a.access_token_sealed, a.access_expires_at, a.authorized_at, a.last_refresh_at,
	a.expires_at, a.reauth_max_age, a.reauth_due_at, a.auth_state, a.auth_error, a.auth_error_code,
	a.auth_error_at, a.warned_state, a.updated_at, a.graph_access_token_sealed, a.graph_access_expires_at, a.granted_scopes`

const mailboxAuthFrom = ` FROM mailbox_auth a JOIN mailboxes m ON m.id = a.mailbox_id`

func scanMailboxAuth(s interface{ Scan(...any) error }) (MailboxAuth, error) {
	var a MailboxAuth
	var accessExp, authorized, lastRefresh, expires, due, errAt, updated, graphExp int64
	var maxAge sql.NullInt64
	err := s.Scan(&a.MailboxID, &a.Address, &a.Kind, &a.Provider, &a.Account, &a.PasswordSealed,
		&a.RefreshTokenSealed, &a.AccessTokenSealed, &accessExp, &authorized, &lastRefresh,
		&expires, &maxAge, &due, &a.State, &a.Error, &a.ErrorCode, &errAt, &a.WarnedState, &updated,
		&a.GraphAccessTokenSealed, &graphExp, &a.GrantedScopes)
	a.GraphAccessExpiresAt = fromMS(graphExp)
	a.AccessExpiresAt, a.AuthorizedAt, a.LastRefreshAt = fromMS(accessExp), fromMS(authorized), fromMS(lastRefresh)
	a.ExpiresAt, a.ReauthDueAt, a.ErrorAt, a.UpdatedAt = fromMS(expires), fromMS(due), fromMS(errAt), fromMS(updated)
	if maxAge.Valid {
		d := time.Duration(maxAge.Int64) * time.Millisecond
		a.ReauthMaxAge = &d
	}
	return a, err
}

// MailboxAuth returns a mailbox's authorization; ErrNotFound when it has
// none recorded (kind none).
func (c conn) MailboxAuth(ctx context.Context, mailboxID int64) (MailboxAuth, error) {
	a, err := scanMailboxAuth(c.queryRow(ctx, `SELECT `+mailboxAuthCols+mailboxAuthFrom+` WHERE a.mailbox_id = ?`, mailboxID))
	return a, one(err)
}

// MailboxAuths lists the authorization of every mailbox that has one, by
// address; with kind set, only that kind.
func (c conn) MailboxAuths(ctx context.Context, kind AuthKind) ([]MailboxAuth, error) {
	q := `SELECT ` + mailboxAuthCols + mailboxAuthFrom
	var args []any
	if kind != "" {
		q += ` WHERE a.kind = ?`
		args = append(args, kind)
	}
	rows, err := c.query(ctx, q+` ORDER BY m.address`, args...)
	if err != nil {
		return nil, fmt.Errorf("list mailbox authorizations: %w", err)
	}
	defer rows.Close()
	var out []MailboxAuth
	for rows.Next() {
		a, err := scanMailboxAuth(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Granted returns the scopes the last sign-in asked for (nil: unknown).
func (a MailboxAuth) Granted() []string { return strings.Fields(a.GrantedScopes) }

// PutMailboxAuth writes a mailbox's whole authorization row (insert or
// replace). Address is ignored.
func (tx *Tx) PutMailboxAuth(ctx context.Context, a MailboxAuth) error {
	var maxAge any
	if a.ReauthMaxAge != nil {
		maxAge = a.ReauthMaxAge.Milliseconds()
	}
	if a.Kind == "" {
		a.Kind = AuthNone
	}
	if a.State == "" {
		a.State = AuthOK
	}
	if a.WarnedState == "" {
		a.WarnedState = AuthOK
	}
	prev, err := tx.lockAuthState(ctx, a.MailboxID)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `INSERT INTO mailbox_auth (mailbox_id, kind, provider, account, password_sealed,
		refresh_token_sealed, access_token_sealed, access_expires_at, authorized_at, last_refresh_at,
		expires_at, reauth_max_age, reauth_due_at, auth_state, auth_error, auth_error_code,
		auth_error_at, warned_state, updated_at, graph_access_token_sealed, graph_access_expires_at, granted_scopes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET kind = excluded.kind, provider = excluded.provider,
		account = excluded.account, password_sealed = excluded.password_sealed,
		refresh_token_sealed = excluded.refresh_token_sealed, access_token_sealed = excluded.access_token_sealed,
		access_expires_at = excluded.access_expires_at, authorized_at = excluded.authorized_at,
		last_refresh_at = excluded.last_refresh_at, expires_at = excluded.expires_at,
		reauth_max_age = excluded.reauth_max_age, reauth_due_at = excluded.reauth_due_at,
		auth_state = excluded.auth_state, auth_error = excluded.auth_error,
		auth_error_code = excluded.auth_error_code, auth_error_at = excluded.auth_error_at,
		warned_state = excluded.warned_state, updated_at = excluded.updated_at,
		graph_access_token_sealed = excluded.graph_access_token_sealed,
		graph_access_expires_at = excluded.graph_access_expires_at, granted_scopes = excluded.granted_scopes`,
		a.MailboxID, a.Kind, a.Provider, a.Account, a.PasswordSealed,
		a.RefreshTokenSealed, a.AccessTokenSealed, ms(a.AccessExpiresAt), ms(a.AuthorizedAt), ms(a.LastRefreshAt),
		ms(a.ExpiresAt), maxAge, ms(a.ReauthDueAt), a.State, a.Error, a.ErrorCode,
		ms(a.ErrorAt), a.WarnedState, ms(a.UpdatedAt), a.GraphAccessTokenSealed, ms(a.GraphAccessExpiresAt),
		a.GrantedScopes)
	if err != nil {
		return fmt.Errorf("save authorization of mailbox %d: %w", a.MailboxID, err)
	}
	return tx.authStateChanged(ctx, a.MailboxID, prev, a.State, a.ErrorCode, a.UpdatedAt)
}

// RefreshedTokens is what a successful refresh records.
type RefreshedTokens struct {
	// Resource is whose access token this is: ResourceMail (the mail
	// servers, "") or ResourceGraph.
	Resource           string
	RefreshTokenSealed string // the rotated refresh token (or the old one)
	AccessTokenSealed  string
	AccessExpiresAt    time.Time
	RefreshedAt        time.Time
	ExpiresAt          time.Time // RefreshedAt + the provider's inactivity window
}

// SaveRefreshedTokens records a successful refresh, provided the stored
// refresh token is still oldRefreshSealed (compare-and-swap: a concurrent
// sign-in or refresh wins). It reports whether the row was updated. The
// error fields are cleared; the state is left for the caller to evaluate.
func (tx *Tx) SaveRefreshedTokens(ctx context.Context, mailboxID int64, oldRefreshSealed string, t RefreshedTokens) (bool, error) {
	access := `access_token_sealed = ?, access_expires_at = ?`
	if t.Resource == ResourceGraph {
		access = `graph_access_token_sealed = ?, graph_access_expires_at = ?`
	}
	res, err := tx.exec(ctx, `UPDATE mailbox_auth SET refresh_token_sealed = ?, `+access+`, last_refresh_at = ?, expires_at = ?, auth_error = '', auth_error_code = '',
		auth_error_at = 0, updated_at = ? WHERE mailbox_id = ? AND refresh_token_sealed = ?`,
		t.RefreshTokenSealed, t.AccessTokenSealed, ms(t.AccessExpiresAt), ms(t.RefreshedAt), ms(t.ExpiresAt),
		ms(t.RefreshedAt), mailboxID, oldRefreshSealed)
	if err != nil {
		return false, fmt.Errorf("save refreshed tokens of mailbox %d: %w", mailboxID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ForgetMailboxTokens erases a mailbox's refresh and access tokens and
// records state with its code and reason (the warning is recorded as given
// too: the caller tells the admins). Who signed in and when is kept.
// Only package oauth calls it (oauth.ForgetSignIn): it is the one writer
// of tokens.
func (tx *Tx) ForgetMailboxTokens(ctx context.Context, mailboxID int64, state AuthState, code, reason string, at time.Time) error {
	prev, err := tx.lockAuthState(ctx, mailboxID)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `UPDATE mailbox_auth SET refresh_token_sealed = '', access_token_sealed = '',
		access_expires_at = 0, graph_access_token_sealed = '', graph_access_expires_at = 0, auth_state = ?, auth_error_code = ?, auth_error = ?, auth_error_at = ?,
		warned_state = ?, updated_at = ? WHERE mailbox_id = ?`,
		state, code, reason, ms(at), state, ms(at), mailboxID)
	if err != nil {
		return fmt.Errorf("forget tokens of mailbox %d: %w", mailboxID, err)
	}
	return tx.authStateChanged(ctx, mailboxID, prev, state, code, at)
}

// SetAuthState records a mailbox's state and, for a failure, its error in
// plain words and its code (both empty clear the error).
func (tx *Tx) SetAuthState(ctx context.Context, mailboxID int64, state AuthState, code, message string, at time.Time) error {
	errAt := at
	if code == "" && message == "" {
		errAt = time.Time{}
	}
	prev, err := tx.lockAuthState(ctx, mailboxID)
	if err != nil || prev == "" {
		return err // no authorization row: nothing to set
	}
	_, err = tx.exec(ctx, `UPDATE mailbox_auth SET auth_state = ?, auth_error_code = ?, auth_error = ?,
		auth_error_at = ?, updated_at = ? WHERE mailbox_id = ?`,
		state, code, message, ms(errAt), ms(at), mailboxID)
	if err != nil {
		return fmt.Errorf("set authorization state of mailbox %d: %w", mailboxID, err)
	}
	return tx.authStateChanged(ctx, mailboxID, prev, state, code, at)
}

// SetWarnedState records the state the admins were last told about.
func (tx *Tx) SetWarnedState(ctx context.Context, mailboxID int64, state AuthState) error {
	_, err := tx.exec(ctx, `UPDATE mailbox_auth SET warned_state = ? WHERE mailbox_id = ?`, state, mailboxID)
	return err
}

// SetMailboxAuthKind chooses how a mailbox signs in (and with which
// provider), creating its authorization row if needed. Tokens are kept.
func (tx *Tx) SetMailboxAuthKind(ctx context.Context, mailboxID int64, kind AuthKind, provider string, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO mailbox_auth (mailbox_id, kind, provider, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET kind = excluded.kind, provider = excluded.provider, updated_at = excluded.updated_at`,
		mailboxID, kind, provider, ms(at))
	if err != nil {
		return fmt.Errorf("set sign-in kind of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// SetMailboxPassword stores the login name and sealed password of a
// password mailbox (seal with MailboxSecret(id, "password")).
func (tx *Tx) SetMailboxPassword(ctx context.Context, mailboxID int64, login, passwordSealed string, at time.Time) error {
	prev, err := tx.lockAuthState(ctx, mailboxID)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `INSERT INTO mailbox_auth (mailbox_id, kind, account, password_sealed, authorized_at, updated_at)
		VALUES (?, 'password', ?, ?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET kind = 'password', provider = '', account = excluded.account,
		password_sealed = excluded.password_sealed, refresh_token_sealed = '', access_token_sealed = '',
		graph_access_token_sealed = '', granted_scopes = '', authorized_at = excluded.authorized_at, auth_state = 'ok', auth_error = '', auth_error_code = '',
		auth_error_at = 0, warned_state = 'ok', updated_at = excluded.updated_at`,
		mailboxID, login, passwordSealed, ms(at), ms(at))
	if err != nil {
		return fmt.Errorf("set password of mailbox %d: %w", mailboxID, err)
	}
	return tx.authStateChanged(ctx, mailboxID, prev, AuthOK, "", at)
}

// SetReauthMaxAge changes a mailbox's maximum authorization age (nil: the
// provider's default; 0: until revoked) and the due date computed from it
// (zero: none).
func (tx *Tx) SetReauthMaxAge(ctx context.Context, mailboxID int64, maxAge *time.Duration, dueAt, at time.Time) error {
	var v any
	if maxAge != nil {
		v = maxAge.Milliseconds()
	}
	_, err := tx.exec(ctx, `UPDATE mailbox_auth SET reauth_max_age = ?, reauth_due_at = ?, updated_at = ? WHERE mailbox_id = ?`,
		v, ms(dueAt), ms(at), mailboxID)
	if err != nil {
		return fmt.Errorf("set maximum authorization age of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// Notice is a message to the admins about a mailbox (or, with MailboxID
// 0, about the whole system).
type Notice struct {
	ID        int64
	MailboxID int64
	Kind      string // e.g. "expiring", "needs_reauth", "provider_fault"
	Message   string
	CreatedAt time.Time
	ReadAt    time.Time
	// Email is what became of the notice's email to the admins
	// (notifications.go).
	Email NoticeEmail
}

// AddNotice records a notice.
func (tx *Tx) AddNotice(ctx context.Context, n *Notice) error {
	var mb any
	if n.MailboxID != 0 {
		mb = n.MailboxID
	}
	id, err := tx.insert(ctx, `INSERT INTO notices (mailbox_id, kind, message, created_at) VALUES (?, ?, ?, ?)`,
		mb, n.Kind, n.Message, ms(n.CreatedAt))
	if err != nil {
		return fmt.Errorf("record notice: %w", err)
	}
	n.ID = id
	return nil
}

// NoticeFilter selects notices; the zero value is every notice.
type NoticeFilter struct {
	MailboxID  int64
	UnreadOnly bool
	Limit      int // 0: 100
}

// Notices lists notices, newest first.
func (c conn) Notices(ctx context.Context, f NoticeFilter) ([]Notice, error) {
	q := `SELECT id, COALESCE(mailbox_id, 0), kind, message, created_at, read_at, email_state, email_mailbox_id, email_count
		FROM notices WHERE 1 = 1`
	var args []any
	if f.MailboxID != 0 {
		q += ` AND mailbox_id = ?`
		args = append(args, f.MailboxID)
	}
	if f.UnreadOnly {
		q += ` AND read_at IS NULL`
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := c.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list notices: %w", err)
	}
	defer rows.Close()
	var out []Notice
	for rows.Next() {
		var n Notice
		var created int64
		var read sql.NullInt64
		if err := rows.Scan(&n.ID, &n.MailboxID, &n.Kind, &n.Message, &created, &read,
			&n.Email.State, &n.Email.MailboxID, &n.Email.Count); err != nil {
			return nil, err
		}
		n.CreatedAt, n.ReadAt = fromMS(created), nullMS(read)
		out = append(out, n)
	}
	return out, rows.Err()
}

// MarkNoticeRead marks a notice as read.
func (tx *Tx) MarkNoticeRead(ctx context.Context, id int64, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE notices SET read_at = ? WHERE id = ? AND read_at IS NULL`, ms(at), id)
	if err != nil {
		return fmt.Errorf("mark notice %d read: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var x int64
		return one(tx.queryRow(ctx, `SELECT id FROM notices WHERE id = ?`, id).Scan(&x))
	}
	return nil
}

// OAuthState is a pending sign-in: only the state's hash is stored.
type OAuthState struct {
	StateHash          string
	MailboxID          int64
	SessionID          int64
	Provider           string
	VerifierSealed     string // sealed with OAuthStateSecret(StateHash)
	Nonce              string
	AllowAddressChange bool
	CreatedAt          time.Time
	ExpiresAt          time.Time
	UsedAt             time.Time
}

// CreateOAuthState records a pending sign-in.
func (tx *Tx) CreateOAuthState(ctx context.Context, s OAuthState) error {
	_, err := tx.exec(ctx, `INSERT INTO oauth_states (state_hash, mailbox_id, session_id, provider, verifier_sealed,
		nonce, allow_address_change, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.StateHash, s.MailboxID, s.SessionID, s.Provider, s.VerifierSealed, s.Nonce, s.AllowAddressChange,
		ms(s.CreatedAt), ms(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("record sign-in state: %w", err)
	}
	return nil
}

// OAuthState returns a pending (or used) sign-in by its state hash.
func (c conn) OAuthState(ctx context.Context, stateHash string) (OAuthState, error) {
	var s OAuthState
	var created, expires, used int64
	err := c.queryRow(ctx, `SELECT state_hash, mailbox_id, session_id, provider, verifier_sealed, nonce,
		allow_address_change, created_at, expires_at, used_at FROM oauth_states WHERE state_hash = ?`, stateHash).
		Scan(&s.StateHash, &s.MailboxID, &s.SessionID, &s.Provider, &s.VerifierSealed, &s.Nonce,
			&s.AllowAddressChange, &created, &expires, &used)
	s.CreatedAt, s.ExpiresAt, s.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
	return s, one(err)
}

// UseOAuthState marks a sign-in state used and reports whether this call
// did (false: it was already used). A state can be used once.
func (tx *Tx) UseOAuthState(ctx context.Context, stateHash string, at time.Time) (bool, error) {
	res, err := tx.exec(ctx, `UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at = 0`, ms(at), stateHash)
	if err != nil {
		return false, fmt.Errorf("use sign-in state: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteOAuthStatesBefore removes sign-in states that expired before t.
func (tx *Tx) DeleteOAuthStatesBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM oauth_states WHERE expires_at < ?`, ms(t))
	if err != nil {
		return 0, fmt.Errorf("delete old sign-in states: %w", err)
	}
	return res.RowsAffected()
}

// PasswordRefused records that the mail server refused a password
// mailbox's password, as read when its password was authorized at
// authorizedAt: needs_reauth with message, and a notice for the admins.
// It records nothing, and reports false, when an admin has saved another
// password since (a refusal that arrives after the save is the old
// password's: servers delay a failed login by seconds), when the mailbox
// signs in otherwise now, or when the refusal is already recorded.
func (tx *Tx) PasswordRefused(ctx context.Context, mailboxID int64, authorizedAt time.Time, message string, at time.Time) (bool, error) {
	var kind AuthKind
	var state AuthState
	var authorized int64
	err := one(tx.queryRow(ctx, `SELECT kind, auth_state, authorized_at FROM mailbox_auth WHERE mailbox_id = ?`+tx.d.forUpdate(),
		mailboxID).Scan(&kind, &state, &authorized))
	if err == ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the password state of mailbox %d: %w", mailboxID, err)
	}
	if kind != AuthPassword || state == AuthNeedsReauth || authorized != ms(authorizedAt) {
		return false, nil
	}
	if err := tx.SetAuthState(ctx, mailboxID, AuthNeedsReauth, CodePasswordRefused, message, at); err != nil {
		return false, err
	}
	var address string
	if err := tx.queryRow(ctx, `SELECT address FROM mailboxes WHERE id = ?`, mailboxID).Scan(&address); err != nil {
		return false, fmt.Errorf("read the address of mailbox %d: %w", mailboxID, err)
	}
	return true, tx.AddNotice(ctx, &Notice{MailboxID: mailboxID, Kind: string(AuthNeedsReauth), Message: address + ": " + message, CreatedAt: at})
}
