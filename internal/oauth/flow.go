package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/store"
)

// Result is a completed Connect / Reauthenticate.
type Result struct {
	MailboxID int64
	Address   string // the mailbox's address
	Account   string // who signed in
	// AccountDiffers: the admin allowed another account than the address
	// (a delegate of a shared mailbox, or an address about to change).
	AccountDiffers bool
	Provider       string
	AuthorizedAt   time.Time
	ReauthDueAt    time.Time // zero: until revoked
	ExpiresAt      time.Time
}

// keptStates is how long spent and expired states are kept, so that a
// late or repeated callback gets "expired" or "already used" rather than
// "unknown".
const keptStates = 24 * time.Hour

// Begin starts Connect / Reauthenticate of a mailbox for the admin's
// session and returns the provider's sign-in URL to redirect to. The state
// is single use and lives Config.StateLifetime. With allowAddressChange,
// Complete accepts an account other than the mailbox's address.
func (s *Service) Begin(ctx context.Context, mailboxID, sessionID int64, allowAddressChange bool) (string, error) {
	mb, err := s.db.Mailbox(ctx, mailboxID)
	if err != nil {
		return "", fmt.Errorf("begin sign-in of mailbox %d: %w", mailboxID, err)
	}
	providerName, prevAccount := "", ""
	if a, err := s.db.MailboxAuth(ctx, mailboxID); err == nil {
		providerName, prevAccount = a.Provider, a.Account
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("begin sign-in of mailbox %d: %w", mailboxID, err)
	}
	p, err := s.providerFor(providerName)
	if err != nil {
		return "", err
	}
	if p.Scopes, err = s.signInScopes(ctx, p, mb, allowAddressChange, prevAccount); err != nil {
		return "", fmt.Errorf("begin sign-in of mailbox %d: %w", mailboxID, err)
	}
	state := randomString(32)
	hash := hashState(state)
	verifier := oauth2.GenerateVerifier()
	nonce := randomString(16)
	sealed, err := s.vault.Seal([]byte(verifier), store.OAuthStateSecret(hash))
	if err != nil {
		return "", err
	}
	now := s.utcNow()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.DeleteOAuthStatesBefore(ctx, now.Add(-keptStates)); err != nil {
			return err
		}
		return tx.CreateOAuthState(ctx, store.OAuthState{
			StateHash: hash, MailboxID: mailboxID, SessionID: sessionID, Provider: p.Name,
			VerifierSealed: sealed, Nonce: nonce, AllowAddressChange: allowAddressChange,
			CreatedAt: now, ExpiresAt: now.Add(s.cfg.StateLifetime),
		})
	})
	if err != nil {
		return "", fmt.Errorf("begin sign-in of mailbox %d: %w", mailboxID, err)
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", nonce),
	}
	if !allowAddressChange {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", mb.Address))
	}
	switch p.Kind {
	case KindMicrosoft:
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	case KindGoogle:
		// Google sends a refresh token only for offline access, and only
		// on consent.
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	s.log.Info("oauth sign-in started", "mailbox_id", mailboxID, "provider", p.Name, "session_id", sessionID, "scopes", strings.Join(p.Scopes, " "))
	return s.oauthConfig(p).AuthCodeURL(state, opts...), nil
}

// Complete finishes a sign-in from the callback's query, for the admin's
// session. Any refusal is a *FlowError and changes nothing (the state is
// spent, so the same answer cannot be replayed).
func (s *Service) Complete(ctx context.Context, sessionID int64, query url.Values) (Result, error) {
	state := query.Get("state")
	if state == "" {
		return Result{}, &FlowError{Err: ErrStateUnknown, Message: "The sign-in answer carries no state, so Postdesk cannot tell what it belongs to: start again from Admin → Emails."}
	}
	hash := hashState(state)
	now := s.utcNow()
	st, err := s.db.OAuthState(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, &FlowError{Err: ErrStateUnknown, Message: "This sign-in answer does not belong to a sign-in Postdesk started: start again from Admin → Emails."}
	}
	if err != nil {
		return Result{}, fmt.Errorf("complete sign-in: %w", err)
	}
	refuse := func(kind error, code, msg string) (Result, error) {
		s.log.Warn("oauth sign-in refused", "mailbox_id", st.MailboxID, "reason", kind.Error(), "code", code)
		return Result{}, &FlowError{Err: kind, MailboxID: st.MailboxID, Code: code, Message: msg}
	}
	switch {
	case st.SessionID != sessionID:
		return refuse(ErrStateSession, "", "This sign-in was started in another browser session: start again from Admin → Emails in this browser.")
	case !st.UsedAt.IsZero():
		return refuse(ErrStateUsed, "", "This sign-in answer was already used (a page was reloaded or opened twice): start again if the mailbox still needs it.")
	case !now.Before(st.ExpiresAt):
		return refuse(ErrStateExpired, "", fmt.Sprintf("The sign-in took longer than %d minutes: start again from Admin → Emails.", int(s.cfg.StateLifetime/time.Minute)))
	}
	var used bool
	if err := s.db.Write(ctx, func(tx *store.Tx) error {
		used, err = tx.UseOAuthState(ctx, hash, now)
		return err
	}); err != nil {
		return Result{}, fmt.Errorf("complete sign-in: %w", err)
	}
	if !used {
		return refuse(ErrStateUsed, "", "This sign-in answer was already used: start again if the mailbox still needs it.")
	}
	if e := query.Get("error"); e != "" {
		return refuse(ErrSignInRefused, callbackCode(e, query.Get("error_description")), signInRefusal(e))
	}
	code := query.Get("code")
	if code == "" {
		return refuse(ErrCodeRejected, "", "The provider's answer carries no authorization code: start again.")
	}
	p, err := s.providerFor(st.Provider)
	if err != nil {
		return Result{}, err
	}
	verifier, err := s.vault.Open(st.VerifierSealed, store.OAuthStateSecret(hash))
	if err != nil {
		return Result{}, fmt.Errorf("complete sign-in: %w", err)
	}
	tok, err := s.oauthConfig(p).Exchange(s.httpCtx(ctx), code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		f := Classify(err)
		switch f.Kind {
		case Temporary:
			return refuse(ErrTemporary, f.Code, "The provider could not complete the sign-in right now ("+f.Reason+") Start again in a minute.")
		case ProviderFault:
			return refuse(ErrProviderFault, f.Code, f.Reason)
		}
		return refuse(ErrCodeRejected, f.Code, "The provider refused the sign-in code (it was already used, or it expired): start the sign-in again.")
	}
	if tok.RefreshToken == "" {
		return refuse(ErrSignInRefused, "no_refresh_token", "The provider gave no refresh token (offline access was not granted): start again and accept every permission Postdesk asks for.")
	}
	account, ferr := s.identify(ctx, p, tok, st.Nonce)
	if ferr != nil {
		return refuse(ferr.Err, ferr.Code, ferr.Message)
	}
	mb, err := s.db.Mailbox(ctx, st.MailboxID)
	if err != nil {
		return Result{}, fmt.Errorf("complete sign-in: %w", err)
	}
	differs := !strings.EqualFold(account, mb.Address)
	if differs && !st.AllowAddressChange {
		return refuse(ErrWrongAccount, "", fmt.Sprintf("You signed in as %s, but this mailbox is %s. Start again and sign in as %s (sign out of %s at the provider first, or use a private window), or choose to allow a different account.",
			account, mb.Address, mb.Address, account))
	}
	prevAccount := ""
	if a, err := s.db.MailboxAuth(ctx, mb.ID); err == nil {
		prevAccount = a.Account
	}
	if p.Scopes, err = s.signInScopes(ctx, p, mb, st.AllowAddressChange, prevAccount); err != nil {
		return Result{}, fmt.Errorf("complete sign-in: %w", err)
	}
	res, err := s.saveSignIn(ctx, p, mb, account, tok, now)
	if err != nil {
		return Result{}, err
	}
	res.AccountDiffers = differs
	return res, nil
}

// saveSignIn stores a completed sign-in: sealed tokens, fresh deadlines,
// state ok, errors cleared.
func (s *Service) saveSignIn(ctx context.Context, p Provider, mb store.Mailbox, account string, tok *oauth2.Token, now time.Time) (Result, error) {
	refreshSealed, err := s.vault.Seal([]byte(tok.RefreshToken), store.MailboxSecret(mb.ID, "refresh_token"))
	if err != nil {
		return Result{}, err
	}
	// Microsoft issues the sign-in's access token for the first scope's
	// resource; the other resource's comes from a refresh when needed.
	resource := ResourceMail
	if len(p.Scopes) > 0 {
		resource = resourceOf(p, p.Scopes[0])
	}
	accessSealed, err := s.vault.Seal([]byte(tok.AccessToken), store.MailboxSecret(mb.ID, accessSecret(resource)))
	if err != nil {
		return Result{}, err
	}
	var a store.MailboxAuth
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		prev, err := tx.MailboxAuth(ctx, mb.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		a = store.MailboxAuth{
			MailboxID: mb.ID, Address: mb.Address, Kind: store.AuthOAuth, Provider: p.Name,
			Account:            strings.ToLower(account),
			RefreshTokenSealed: refreshSealed,
			GrantedScopes:      strings.Join(p.Scopes, " "),
			AuthorizedAt:       now, LastRefreshAt: now,
			ExpiresAt:    addNonZero(now, p.RefreshInactivity),
			ReauthMaxAge: prev.ReauthMaxAge,
			UpdatedAt:    now,
		}
		if resource == ResourceGraph {
			a.GraphAccessTokenSealed, a.GraphAccessExpiresAt = accessSealed, accessExpiry(tok, now)
		} else {
			a.AccessTokenSealed, a.AccessExpiresAt = accessSealed, accessExpiry(tok, now)
		}
		a.ReauthDueAt = addNonZero(now, maxAge(a, p))
		a.State, _, _ = State(now, a, p)
		a.WarnedState = store.AuthOK
		if err := tx.PutMailboxAuth(ctx, a); err != nil {
			return err
		}
		what := "Connected"
		if !prev.AuthorizedAt.IsZero() {
			what = "Reauthenticated"
		}
		if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: mb.ID, Kind: store.ActivityAuth,
			Message: what + " (signed in as " + a.Account + ")", CreatedAt: now}); err != nil {
			return err
		}
		if s.cfg.OnAuthorized != nil {
			if err := s.cfg.OnAuthorized(ctx, tx, mb.ID); err != nil {
				return err
			}
		}
		if prev.WarnedState != "" && prev.WarnedState != store.AuthOK {
			return tx.AddNotice(ctx, &store.Notice{MailboxID: mb.ID, Kind: "restored", CreatedAt: now,
				Message: fmt.Sprintf("%s is authorized again (signed in as %s).", mb.Address, a.Account)})
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("save sign-in of mailbox %d: %w", mb.ID, err)
	}
	s.clearTempFailures(mb.ID)
	s.log.Info("oauth mailbox authorized", "mailbox_id", mb.ID, "provider", p.Name, "account", a.Account)
	return Result{MailboxID: mb.ID, Address: mb.Address, Account: a.Account, Provider: p.Name,
		AuthorizedAt: now, ReauthDueAt: a.ReauthDueAt, ExpiresAt: a.ExpiresAt}, nil
}

// identify learns which account signed in: the ID token's email,
// preferred_username or upn, else the userinfo endpoint. The ID token came
// straight from the token endpoint over TLS, which OpenID Connect Core
// 3.1.3.7 (6) accepts in place of checking its signature; its audience and
// nonce are still checked.
func (s *Service) identify(ctx context.Context, p Provider, tok *oauth2.Token, nonce string) (string, *FlowError) {
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err == nil {
			aud, _ := claims.GetAudience()
			if !slices.Contains(aud, p.ClientID) || (claims["nonce"] != nil && claims["nonce"] != nonce) {
				return "", &FlowError{Err: ErrUnknownAccount, Code: "id_token", Message: "The provider's ID token was not issued for this sign-in: start again."}
			}
			if a := accountClaim(claims); a != "" {
				return a, nil
			}
		}
	}
	if p.UserinfoURL != "" {
		if a, err := s.userinfo(ctx, p, tok.AccessToken); err == nil && a != "" {
			return a, nil
		}
	}
	return "", &FlowError{Err: ErrUnknownAccount, Code: "no_account", Message: "Postdesk could not learn which account signed in (the provider named no email address): check that the provider's scopes include openid and email, then start again."}
}

func accountClaim(claims map[string]any) string {
	for _, k := range []string{"email", "preferred_username", "upn"} {
		if v, _ := claims[k].(string); strings.Contains(v, "@") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// userinfo asks the OpenID Connect userinfo endpoint (Core 5.3).
func (s *Service) userinfo(ctx context.Context, p Provider, accessToken string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.UserinfoURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("userinfo: %w", err) // the token is in a header, never in the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("userinfo: HTTP %d", resp.StatusCode)
	}
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&claims); err != nil {
		return "", fmt.Errorf("userinfo: %w", err)
	}
	return accountClaim(claims), nil
}

// signInRefusal puts a provider's callback error in plain words.
func signInRefusal(code string) string {
	switch code {
	case "access_denied":
		return "The sign-in was cancelled or consent was declined. Start again and accept the permissions Postdesk asks for."
	case "consent_required", "interaction_required":
		return "The account needs consent to Postdesk's permissions, which it cannot give itself: ask an administrator to grant consent for Postdesk, then start again."
	case "login_required":
		return "The provider asked for a fresh sign-in: start again."
	case "temporarily_unavailable", "server_error":
		return "The provider is temporarily unavailable: start again in a minute."
	}
	return fmt.Sprintf("The provider refused the sign-in (%s). Start again, or check the provider settings.", safeCode(code))
}

// callbackCode is the AADSTS code in a callback's description, else the
// OAuth error.
func callbackCode(e, description string) string {
	if m := aadstsRE.FindString(description); m != "" {
		return m
	}
	return safeCode(e)
}

func (s *Service) oauthConfig(p Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  s.cfg.RedirectURL,
		Scopes:       p.Scopes,
		// One style, never auto-detection: that would send a refused
		// request twice.
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

func (s *Service) httpCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
}

// accessExpiry is when an access token expires, by the injected clock
// (oauth2 computes Token.Expiry from the real clock).
func accessExpiry(tok *oauth2.Token, now time.Time) time.Time {
	if tok.ExpiresIn > 0 {
		return now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return now.Add(30 * time.Minute) // unknown: assume short-lived
}

func addNonZero(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// signInScopes returns the scopes a sign-in of mb asks for, from its
// transports (SignInScopes); a delegate may sign in (allowAddressChange,
// or one did before) so the shared-mailbox variants are asked for then.
func (s *Service) signInScopes(ctx context.Context, p Provider, mb store.Mailbox, allowAddressChange bool, prevAccount string) ([]string, error) {
	srv, err := s.db.MailboxServer(ctx, mb.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	shared := allowAddressChange || (prevAccount != "" && !strings.EqualFold(prevAccount, mb.Address))
	return SignInScopes(p, srv, shared), nil
}
