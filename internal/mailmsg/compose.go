package mailmsg

// Composition of outbound replies (the other direction of this package).
//
// Invariants:
//
//   - Every header is written by go-message's mail.Header setters, never
//     by string concatenation, and every user-given value is cleaned before
//     it reaches a setter: go-message writes values as given, so a CR or LF
//     that reached it would end the field. Free text (subject, display
//     names, attachment names) loses its control characters; addresses and
//     message ids are checked and refused (HeaderValueError) or, for ids
//     taken from the customer's thread, dropped.
//   - The result is a complete RFC 5322 message with CRLF line ends, ready
//     for SMTP DATA or IMAP APPEND.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// OutAddress is an address to write in a header.
type OutAddress struct{ Name, Address string }

// OutAttachment is one file attached to an outbound message.
type OutAttachment struct {
	Filename    string // as the agent uploaded it; cleaned before writing
	ContentType string // media type; application/octet-stream when empty or invalid
	Data        []byte
}

// Quote is one earlier message of the conversation, quoted below the
// agent's text. Reply.Quotes lists them newest first.
type Quote struct {
	From string    // for display, e.g. "Jane Cooper <jane@example.com>"
	Date time.Time // written in its own location
	Text string
}

// Reply is everything ComposeReply needs to write an answer on a ticket.
type Reply struct {
	From    OutAddress
	To, Cc  []OutAddress
	Subject string // the ticket's subject as stored; ComposeReply writes ReplySubject(Subject, TicketID)
	// TicketID is the ticket's number, written into the subject.
	TicketID int64
	// MessageID is this message's id without angle brackets (NewMessageID).
	MessageID string
	// InReplyTo is the parent's id without angle brackets; "" for none.
	InReplyTo string
	// References are the thread's ids without angle brackets, oldest first.
	// InReplyTo is appended when missing (RFC 5322 3.6.4), duplicates and
	// ids that cannot be written are dropped, and a long list keeps the
	// first id and the newest ones (MaxReferences in all).
	References []string
	Text       string // the agent's text; CRLF, CR and LF all accepted
	// Signature is appended after the RFC 3676 4.3 separator "-- " when
	// not empty.
	Signature   string
	Quotes      []Quote // the conversation, newest first, quoted below the text
	Attachments []OutAttachment
	Date        time.Time // time.Now() when zero
	// Auto marks automatic mail (acknowledgements): Auto-Submitted:
	// auto-replied (RFC 3834 5) and X-Auto-Response-Suppress: All. Never
	// set on an agent's reply.
	Auto bool
}

// MaxReferences bounds the References header ComposeReply writes.
const MaxReferences = 21

// maxSubjectBytes keeps a Subject field, even one long word of it, within
// the 998-byte line limit of RFC 5322 2.1.1.
const maxSubjectBytes = 800

// maxNameBytes bounds a display name, for the same reason.
const maxNameBytes = 200

// ErrInvalidAddress is wrapped by a HeaderValueError for an address that
// cannot be written into a header.
var ErrInvalidAddress = errors.New("invalid email address")

// ErrInvalidMessageID is wrapped by a HeaderValueError for a message id of
// our own (Reply.MessageID) that is not dot-atom@dot-atom (RFC 5322 3.6.4).
var ErrInvalidMessageID = errors.New("invalid message id")

// HeaderValueError reports a value that ComposeReply (or CheckAddress)
// refused to write. It wraps ErrInvalidAddress or ErrInvalidMessageID.
type HeaderValueError struct {
	Field string // header field, e.g. "Cc"
	Value string // the value as given (may hold control characters: quote it when showing)
	Err   error
}

func (e *HeaderValueError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.Field, e.Value, e.Err)
}

func (e *HeaderValueError) Unwrap() error { return e.Err }

// CheckAddress reports whether addr is a bare addr-spec that can be written
// into a header: it must parse with net/mail as itself (no display name,
// no brackets, no comments) and hold no whitespace or control character.
// The error is a *HeaderValueError wrapping ErrInvalidAddress; its Field is
// "address".
func CheckAddress(addr string) error {
	return checkAddress("address", addr)
}

func checkAddress(field, addr string) error {
	bad := &HeaderValueError{Field: field, Value: addr, Err: ErrInvalidAddress}
	if addr == "" || len(addr) > 320 || strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\uFFFD' }) {
		return bad
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr || NormalizeAddress(addr) == "" {
		return bad
	}
	return nil
}

// ComposeReply writes r as a complete message: multipart/alternative of a
// text/plain and a text/html rendering (both quoted-printable UTF-8),
// inside multipart/mixed when there are attachments. It fails with a
// *HeaderValueError when From, a To or Cc address (at least one To is
// needed) or MessageID cannot be written; nothing else is refused.
func ComposeReply(r Reply) ([]byte, error) {
	h, err := replyHeader(r)
	if err != nil {
		return nil, err
	}
	text, html := renderReply(r)
	var buf bytes.Buffer
	if len(r.Attachments) == 0 {
		w, err := gomail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("compose reply: %w", err)
		}
		if err := writeAlternatives(w, text, html); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	w, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	iw, err := w.CreateInline()
	if err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	if err := writeAlternatives(iw, text, html); err != nil {
		return nil, err
	}
	for i, a := range r.Attachments {
		if err := writeAttachment(w, a, i+1); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	return buf.Bytes(), nil
}

// replyHeader decides and checks every header field of r.
func replyHeader(r Reply) (gomail.Header, error) {
	var h gomail.Header
	from, err := outAddresses("From", []OutAddress{r.From})
	if err != nil {
		return h, err
	}
	to, err := outAddresses("To", r.To)
	if err != nil {
		return h, err
	}
	if len(to) == 0 {
		return h, &HeaderValueError{Field: "To", Err: ErrInvalidAddress}
	}
	cc, err := outAddresses("Cc", r.Cc)
	if err != nil {
		return h, err
	}
	if !strictMsgID(r.MessageID) {
		return h, &HeaderValueError{Field: "Message-ID", Value: r.MessageID, Err: ErrInvalidMessageID}
	}
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	// go-message writes the fields last set first: set them bottom up so
	// that the message reads Date, From, To, Cc, Subject, ids.
	if r.Auto {
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Auto-Submitted", "auto-replied")
	}
	h.SetMsgIDList("References", replyReferences(r.References, r.InReplyTo))
	if validMsgID(r.InReplyTo) {
		h.SetMsgIDList("In-Reply-To", []string{r.InReplyTo})
	}
	h.SetMessageID(r.MessageID)
	setSubject(&h, ReplySubject(r.Subject, r.TicketID))
	h.SetAddressList("Cc", cc)
	h.SetAddressList("To", to)
	h.SetAddressList("From", from)
	h.SetDate(date)
	return h, nil
}

// outAddresses checks each address and cleans each display name.
func outAddresses(field string, in []OutAddress) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(in))
	for _, a := range in {
		addr := strings.TrimSpace(a.Address)
		if err := checkAddress(field, addr); err != nil {
			return nil, err
		}
		// net/mail's Address.String quotes or encodes the name (RFC 5322
		// 3.4, RFC 2047); it must not see a line break.
		name := defuseWords(truncateBytes(oneLine(a.Name), maxNameBytes))
		out = append(out, &mail.Address{Name: name, Address: addr})
	}
	return out, nil
}

// validMsgID reports whether id can be written between angle brackets as
// an RFC 5322 3.6.4 msg-id: left@right of visible ASCII, no brackets.
func validMsgID(id string) bool {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 || i == len(id)-1 || len(id) > 900 {
		return false
	}
	for j := 0; j < len(id); j++ {
		if c := id[j]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',' {
			return false
		}
	}
	return true
}

// strictMsgID holds our own ids to RFC 5322 3.6.4: dot-atom-text "@"
// dot-atom-text. (Ids of the customer's thread are only held to validMsgID:
// real mail has ids that break the grammar, and threading needs them.)
func strictMsgID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	return ok && validMsgID(id) && dotAtom(left) && dotAtom(right)
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0) {
			return false
		}
	}
	return true
}

// replyReferences dedupes, drops unwritable ids, makes sure the parent is
// last, and keeps the first id and the newest MaxReferences-1 when the list
// is long (RFC 5322 3.6.4 leaves trimming to the writer; the root and the
// recent ancestors are what threading uses).
func replyReferences(refs []string, parent string) []string {
	seen := make(map[string]bool, len(refs)+1)
	var out []string
	for _, id := range refs {
		id = strings.Trim(strings.TrimSpace(id), "<>")
		if validMsgID(id) && !seen[id] && id != parent {
			seen[id] = true
			out = append(out, id)
		}
	}
	if validMsgID(parent) {
		out = append(out, parent)
	}
	if n := len(out); n > MaxReferences {
		out = append(out[:1:1], out[n-MaxReferences+1:]...)
	}
	return out
}

func writeAlternatives(w *gomail.InlineWriter, text, html string) error {
	for _, p := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
		var ih gomail.InlineHeader
		ih.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		ih.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := w.CreatePart(ih)
		if err != nil {
			return fmt.Errorf("compose %s part: %w", p.typ, err)
		}
		if _, err := io.WriteString(pw, p.body); err != nil {
			return fmt.Errorf("compose %s part: %w", p.typ, err)
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("compose %s part: %w", p.typ, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compose alternatives: %w", err)
	}
	return nil
}

func writeAttachment(w *gomail.Writer, a OutAttachment, n int) error {
	typ, _, err := mime.ParseMediaType(a.ContentType)
	if err != nil || !strings.Contains(typ, "/") {
		typ = "application/octet-stream"
	}
	name := defuseWords(sanitizeFilename(strings.ToValidUTF8(a.Filename, ""), typ, n))
	var ah gomail.AttachmentHeader
	// The name parameter of Content-Type too, for clients that read only
	// that one (go-message writes it in RFC 2047 words, as Gmail and
	// Thunderbird do). The filename is written as RFC 2231 says a
	// parameter is (filename*=utf-8''R%C3%A9sum%C3%A9.pdf): RFC 2047 words
	// inside quotes are not allowed there, and Python's email and Mutt
	// show them as they are.
	ah.SetContentType(typ, map[string]string{"name": name})
	if disp := mime.FormatMediaType("attachment", map[string]string{"filename": name}); disp != "" {
		ah.Set("Content-Disposition", disp)
	} else {
		ah.SetFilename(name)
	}
	ah.Set("Content-Transfer-Encoding", "base64")
	aw, err := w.CreateAttachment(ah)
	if err != nil {
		return fmt.Errorf("compose attachment %d: %w", n, err)
	}
	if _, err := aw.Write(a.Data); err != nil {
		return fmt.Errorf("compose attachment %d: %w", n, err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("compose attachment %d: %w", n, err)
	}
	return nil
}

// setSubject writes the Subject field. Printable ASCII (that does not look
// like an encoded-word, which readers would decode) goes through
// go-message, which folds at spaces. Anything else is written as RFC 2047
// encoded-words of at most maxWordLen characters, one per folded line, so
// that no line passes the 78 characters RFC 5322 2.1.1 recommends
// (go-message's own encoder makes 75-character words and cannot fold the
// first one after "Subject: ").
func setSubject(h *gomail.Header, s string) {
	if isPrintableASCII(s) && !strings.Contains(s, "=?") {
		h.SetSubject(s)
		return
	}
	// Words of at most maxWordLen characters, separated by a space, leave
	// go-message's folder a space to fold at on every line.
	h.Set("Subject", strings.Join(encodedWords(s), " "))
}

// maxWordLen keeps "Subject: " plus one encoded-word within 76 characters.
const maxWordLen = 66

// encodedWords writes s as Q-encoded words (RFC 2047 4.2) of at most
// maxWordLen characters, split at rune boundaries. Every word is encoded,
// ASCII ones too: decoders drop the folding whitespace between adjacent
// encoded-words (RFC 2047 6.2), so the text comes back unchanged.
func encodedWords(s string) []string {
	const prefix, suffix = "=?utf-8?q?", "?="
	var words []string
	var w strings.Builder
	for _, r := range s {
		var enc strings.Builder
		for _, c := range []byte(string(r)) {
			switch {
			case c == ' ':
				enc.WriteByte('_')
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
				enc.WriteByte(c)
			default:
				fmt.Fprintf(&enc, "=%02X", c)
			}
		}
		if w.Len() > 0 && len(prefix)+w.Len()+enc.Len()+len(suffix) > maxWordLen {
			words = append(words, prefix+w.String()+suffix)
			w.Reset()
		}
		w.WriteString(enc.String())
	}
	if w.Len() > 0 {
		words = append(words, prefix+w.String()+suffix)
	}
	return words
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// defuseWords breaks "=?" in a display name or file name. go-message and
// net/mail write printable ASCII as it is (quoted), and many readers, ours
// included, decode an encoded-word even inside quotes: a name typed as
// "=?utf-8?q?=0D=0A?=" would come back as a line break.
func defuseWords(s string) string {
	return strings.ReplaceAll(s, "=?", "=_?")
}
