package mailmsg

import (
	"strings"
	"time"
)

// Forward detection finds the original message inside a forward, so that a
// customer's email an agent forwards to the support address can be filed as
// if it had arrived directly.
//
// Originals are found in two ways:
//
//   - attached: a message/rfc822 part, or an attached .eml file. Its own
//     headers are used as they are (ParseForwards only: it needs the raw
//     parts, which Parse streams past).
//   - inline: the header block a mail client writes above the forwarded
//     text ("From: / Sent: / To: / Subject:", "---------- Forwarded message
//     ---------", "Begin forwarded message:", ...), in the HTML body (rendered
//     to lines) or the text body, with ">" quoting removed. The labels,
//     markers, subject prefixes and month names of twenty languages are in
//     forward_labels.go.
//
// The layouts recognised (Forward.Shape) are listed with the Shape
// constants: one field a line, the block in ">" quoting (Apple Mail), some
// labels translated and the rest English (Gmail), a tab after the colon
// (Thunderbird), full-width colons (Japanese clients, HubSpot), Outlook.com's
// "mailto:" decorations and "on behalf of", Yahoo's fields run together on
// one line, and Outlook 2019 / Outlook for Mac's "wrote:" line.
//
// Reply or forward. Outlook writes the same "From: / Sent:" block under a
// reply as under a forward, and a reply quotes the mail it answers; the
// rule, applied to each block found, outermost first:
//
//  1. If the subject of the message that contains the block starts with a
//     reply prefix (Re:, AW:, SV:, Odp:, R:, Antw:, RES:, YNT:, Отв: ...;
//     "VS:" is a reply in Finnish), nothing inside it is a forward: a reply
//     that quotes earlier mail is that sender's own message.
//  2. A block that sits inside ">" quoting under an attribution line ("On
//     ... Ann wrote:", "Am ... schrieb", "Le ... a écrit :") is a quotation,
//     not a forward.
//  3. An explicit forward marker (Gmail's, Apple Mail's, Thunderbird's,
//     Yahoo's "Forwarded message" lines and their translations) is a forward.
//  4. Any other block (Outlook's "-----Original Message-----", a rule of
//     underscores, an <hr>, or a bare "From: / Sent: / To: / Subject:" block)
//     is a forward when the subject starts with a forward prefix (FW:, Fwd:,
//     WG:, TR:, RV:, I:, Doorst:, ENC:, PD:, VB:, VL:, Továbbítás:, Перес:,
//     İLT:; "VS:" in Danish and Norwegian), or when the subject has no prefix
//     at all and nothing but blank lines stands above the block.
//
//  5. A reply's attribution line ("On <date>, "Ann" <a@x> wrote:") is a
//     forward in one case only, the one Outlook 2019 and Outlook for Mac
//     write (ShapeWroteLine): the subject starts with a forward prefix, the
//     line is not quoted, nothing but the forwarder's own unquoted words
//     stands above it (no header block, marker or quotation), it names the
//     sender's address, and the original under it is indented by four spaces
//     (text) or in a <blockquote> (HTML). The same line under "Re:", "AW:",
//     "SV:", "Odp:" ..., under no prefix, or above ">" quoting is a reply.
//
// A "Fwd:" subject without a block finds nothing. Messages classified as
// automatic (bounces, automatic replies) find nothing either.

// Forward sources.
const (
	ForwardAttached   = "attached"
	ForwardInlineText = "inline-text"
	ForwardInlineHTML = "inline-html"
)

// Forward shapes: how the original's header was laid out (Forward.Shape).
const (
	ShapeAttached    = "attached"          // a message/rfc822 part or an attached .eml
	ShapeHeaderBlock = "header-block"      // one "Label: value" field a line
	ShapeQuotedBlock = "quoted-block"      // the block inside ">" quoting (Apple Mail)
	ShapeMixedLabels = "mixed-labels"      // some labels translated, the others English (Gmail)
	ShapeTabbed      = "tab-after-colon"   // "Oggetto:\tsubject" (Thunderbird)
	ShapeFullWidth   = "full-width-colons" // "件名：subject" (Japanese clients, HubSpot)
	ShapeMailto      = "mailto-decorated"  // "Name<mailto:a@b> <a@b<mailto:a@b>> on behalf of c@b" (Outlook.com)
	ShapeOneLine     = "one-line-block"    // "From: ...To: ...Sent: ...Subject: ..." on one line (Yahoo)
	ShapeWroteLine   = "wrote-line"        // "On <date>, "Name" <addr> wrote:" and an indented original (Outlook 2019, Outlook for Mac)
)

// maxForwardDepth bounds how many nested forwards are followed.
const maxForwardDepth = 12

// Forward is an original message found inside a forward.
type Forward struct {
	Source   string // ForwardAttached, ForwardInlineText or ForwardInlineHTML
	Client   string // best guess of the forwarding format: "outlook", "outlook-web", "outlook-mac", "gmail", "apple", "thunderbird", "yahoo", "generic"
	Shape    string // the layout recognised: one of the Shape constants
	Language string // language of the header block's labels ("en", "de", "fr" ...); "" for attached originals
	From     Address
	To, Cc   []Address
	// Date is when the original was sent; zero if it could not be read, and
	// then DateText has the raw text. A block date without a time zone
	// ("Sent: Monday, November 2, 2026 10:13 AM") is in the forwarder's zone,
	// taken from the Date of the message that contains the block; then
	// DateZoneAssumed is true (off by an hour across a daylight saving change).
	Date            time.Time
	DateText        string
	DateZoneAssumed bool
	Subject         string
	MessageID       string   // attached originals only
	InReplyTo       []string // attached originals only
	References      []string // attached originals only
	Text            string   // the original's body text
	HTML            string   // the original's HTML body, when there is one (attached, or the HTML after an inline block)
	// Attachments are an attached original's own attachments (metadata).
	// For an inline forward they stay nil: the forwarding message's
	// attachments usually came with the original, but not always.
	Attachments []Attachment
	Note        string // the forwarder's own words above the forward, trimmed; "" if none
	Depth       int    // 1 for the outermost forward, 2 for a forward found inside it, ...
	// Chain is set by PickCustomer: every forward found, outermost first.
	Chain []Forward
}

// FindForwards returns the inline forwards in an already parsed message,
// outermost first (nil if it is not a forward). It cannot see attached
// originals, which Parse does not keep: use ParseForwards for those.
func FindForwards(msg *Message) []Forward {
	if msg == nil || msg.Auto != AutoNone {
		return nil
	}
	return findInline(msg.Text, msg.HTML, msg.Subject, zoneOf(msg.Date), 1)
}

// PickCustomer walks a chain of forwards (as ParseForwards returns it) from
// the outside in, past the forwards sent by one of our own addresses (agents,
// support mailboxes; ours gets the address as written and decides, e.g.
// after NormalizeAddress), and returns the first original from someone
// else, with Chain set to the whole chain. A customer's email that itself
// forwards older mail stays the customer's: the walk stops there. ok is
// false when every original is ours (or the chain is empty).
func PickCustomer(chain []Forward, ours func(address string) bool) (Forward, bool) {
	for _, f := range chain {
		if ours != nil && f.From.Address != "" && ours(f.From.Address) {
			continue
		}
		f.Chain = chain
		return f, true
	}
	return Forward{}, false
}

// classifySubject reads the first prefix of a subject ("RE: FW: x" is a
// reply). lang resolves "VS:".
func classifySubject(subject, lang string) subjectKind {
	s := strings.TrimSpace(normSpace(subject))
	for range 4 {
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return subjNone
			}
			inner := strings.ToLower(s[1:end])
			if strings.HasPrefix(inner, "fwd:") || strings.HasPrefix(inner, "fw:") {
				return subjForward // Thunderbird's old "[Fwd: subject]"
			}
			s = strings.TrimSpace(s[end+1:]) // a tag: "[EXTERNAL]", "[#1042]"
			continue
		}
		break
	}
	i := strings.IndexAny(s, ":：")
	if i <= 0 || i > 24 {
		return subjNone
	}
	p := strings.ToLower(strings.TrimSpace(s[:i]))
	// "Re[2]:", "RE (3):"
	if j := strings.IndexAny(p, "[( "); j > 0 {
		p = strings.TrimSpace(p[:j])
	}
	k := subjectPrefixes[p]
	if k == subjVS {
		switch lang {
		case "fi":
			return subjReply
		case "da", "no":
			return subjForward
		}
		return subjNone
	}
	return k
}

// zoneOf is the zone of a message's date, for block dates without one.
func zoneOf(t time.Time) *time.Location {
	if t.IsZero() {
		return time.UTC
	}
	return t.Location()
}

// clientFromHeaders guesses the mail client of a forward-as-attachment from
// the forwarding message's header fields.
func clientFromHeaders(mailer, messageID string) string {
	m := strings.ToLower(mailer)
	switch {
	case strings.Contains(m, "outlook") || strings.Contains(m, "microsoft"):
		return "outlook"
	case strings.Contains(m, "apple mail") || strings.Contains(m, "iphone mail") || strings.Contains(m, "ipad mail"):
		return "apple"
	case strings.Contains(m, "thunderbird") || strings.Contains(m, "betterbird"):
		return "thunderbird"
	case strings.Contains(m, "yahoo"):
		return "yahoo"
	case strings.HasSuffix(strings.ToLower(messageID), "@mail.gmail.com"):
		return "gmail"
	case strings.HasSuffix(strings.ToLower(messageID), ".outlook.com"):
		return "outlook-web"
	}
	return "generic"
}
