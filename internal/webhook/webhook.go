// Package webhook is the wire side of Postdesk's webhooks: the signature
// (Sign, Verify), the rules for a target URL (CheckURL), an HTTP client
// that will not reach private addresses (NewClient), and the classification
// of an attempt's outcome (Classify). It is a leaf: it imports nothing of
// the application, so the jobs that deliver, the desk that validates a new
// webhook and a receiver's test all share one definition.
//
// Signature (Stripe's scheme): the header
//
//	Postdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// signs the exact body bytes with the time of the attempt. A receiver
// recomputes the HMAC over "<t>.<raw body>" with its secret, compares it in
// constant time, and refuses a t too far from its clock (replays). Each
// attempt of one delivery is signed afresh; Postdesk-Delivery names the
// delivery, so a receiver can drop a repeat (delivery is at least once).
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names sent with every delivery.
const (
	HeaderEvent     = "Postdesk-Event"     // the event kind, e.g. ticket.created
	HeaderDelivery  = "Postdesk-Delivery"  // the delivery's id (the same for every retry)
	HeaderSignature = "Postdesk-Signature" // t=<unix>,v1=<hex HMAC-SHA256>
)

// Sign returns the Postdesk-Signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verification errors.
var (
	ErrBadSignatureHeader = errors.New("webhook signature header is malformed")
	ErrSignatureMismatch  = errors.New("webhook signature does not match")
	ErrSignatureTooOld    = errors.New("webhook signature timestamp is outside the tolerance")
)

// Verify checks a Postdesk-Signature header against body and secret, and
// that its timestamp is within tolerance of now (0: not checked). Any v1
// value may match (a header may carry several).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignatureHeader
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrBadSignatureHeader
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignatureHeader
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return ErrSignatureTooOld
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// NewSecret returns a new random secret, "whsec_" and 32 random bytes in
// base64url.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes of an attempt.
const (
	Delivered Outcome = iota // a 2xx answer
	Retry                    // a network error, a timeout, 408, 429 or 5xx: try again later
	Refused                  // any other answer (4xx, 3xx: redirects are not followed), or a refused target: failed for good
)

// Classify says what an answer's status (0: no answer, err says why)
// means for the delivery.
func Classify(status int, err error) Outcome {
	var refused *TargetRefusedError
	switch {
	case errors.As(err, &refused):
		return Refused
	case err != nil || status == 0:
		return Retry
	case status >= 200 && status < 300:
		return Delivered
	case status == 408 || status == 429 || status >= 500:
		return Retry
	default:
		return Refused
	}
}

// StatusError describes a non-2xx answer in plain words.
func StatusError(status int, snippet string) string {
	msg := fmt.Sprintf("the endpoint answered HTTP %d", status)
	if status >= 300 && status < 400 {
		msg += " (a redirect: Postdesk does not follow redirects; register the final URL)"
	}
	if snippet = strings.TrimSpace(snippet); snippet != "" {
		msg += ": " + snippet
	}
	return msg
}
