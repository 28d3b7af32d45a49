package mailmsg

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// MaxAttachedOriginalBytes caps an attached original that ParseForwards
// reads into memory; a bigger one stays an ordinary attachment.
const MaxAttachedOriginalBytes = 32 << 20

// ParseForwards parses a raw message as Parse does and also returns the
// originals forwarded in it, outermost first (nil if it is not a forward):
// attached originals (message/rfc822 parts and attached .eml files), read
// with their own headers, and inline forwards (see FindForwards). Nested
// forwards follow the forward they were found in, in document order, with
// Depth one more. When an inline forward is found, attached messages are
// taken as the innermost original's own attachments (Gmail and Outlook
// forward them along), so they follow it one level deeper.
//
// opts.Attachment, if set, still receives every attachment, attached
// originals included. The caller can pass the raw message kept on disk: a
// second pass next to Parse is cheap.
func ParseForwards(r io.Reader, opts ParseOptions) (*Message, []Forward, error) {
	return parseForwards(r, opts, 1)
}

func parseForwards(r io.Reader, opts ParseOptions, depth int) (*Message, []Forward, error) {
	var attached [][]byte
	userCB := opts.Attachment
	opts.Attachment = func(a *Attachment, content io.Reader) error {
		if !attachedMessage(a) || len(attached) >= 20 {
			if userCB != nil {
				return userCB(a, content)
			}
			return nil
		}
		buf := &cappedBuffer{max: MaxAttachedOriginalBytes}
		if userCB != nil {
			if err := userCB(a, io.TeeReader(content, buf)); err != nil {
				return err
			}
		}
		if _, err := io.Copy(buf, content); err != nil {
			return err
		}
		if !buf.over {
			attached = append(attached, buf.b.Bytes())
		}
		return nil
	}
	msg, err := Parse(r, opts)
	if err != nil {
		return nil, nil, err
	}
	if msg.Auto != AutoNone || depth > maxForwardDepth || (opts.LookForForwards != nil && !opts.LookForForwards(msg)) {
		return msg, nil, nil
	}
	loc := zoneOf(msg.Date)
	fs := findInline(msg.Text, msg.HTML, msg.Subject, loc, depth)
	if len(fs) > 0 {
		last := fs[len(fs)-1]
		more, err := attachedForwards(attached, opts, last.Depth+1, "", "")
		return msg, append(fs, more...), err
	}
	client := clientFromHeaders(msg.mailer, msg.MessageID)
	fs, err = attachedForwards(attached, opts, depth, client, strings.TrimSpace(msg.Text))
	return msg, fs, err
}

// attachedForwards reads attached originals, each followed by the forwards
// found inside it; their attachments go to opts.ForwardedAttachment.
func attachedForwards(raws [][]byte, opts ParseOptions, depth int, client, note string) ([]Forward, error) {
	if depth > maxForwardDepth {
		return nil, nil
	}
	if client == "" {
		client = "generic"
	}
	var out []Forward
	for _, raw := range raws {
		m, inner, err := parseForwards(bytes.NewReader(raw), ParseOptions{MaxBodyBytes: opts.MaxBodyBytes,
			Attachment: opts.ForwardedAttachment, ForwardedAttachment: opts.ForwardedAttachment}, depth+1)
		if err != nil {
			return nil, err // a bytes.Reader does not fail: ForwardedAttachment did
		}
		h := headerOf(raw[:min(len(raw), 64<<10)])
		f := Forward{
			Source:      ForwardAttached,
			Shape:       ShapeAttached,
			Client:      client,
			Subject:     m.Subject,
			To:          m.To,
			Cc:          m.Cc,
			Date:        m.Date,
			DateText:    strings.TrimSpace(h.Get("Date")),
			MessageID:   m.MessageID,
			InReplyTo:   m.InReplyTo,
			References:  m.References,
			Text:        m.Text,
			HTML:        m.HTML,
			Attachments: m.Attachments,
			Note:        note,
			Depth:       depth,
		}
		if len(m.From) > 0 {
			f.From = m.From[0]
		}
		out = append(out, f)
		out = append(out, inner...)
	}
	return out, nil
}

// attachedMessage says whether an attachment is a forwarded original: a
// message/rfc822 (or message/global) part, or a file named .eml.
func attachedMessage(a *Attachment) bool {
	switch a.ContentType {
	case "message/rfc822", "message/global":
		return true
	case "application/octet-stream", "application/eml", "application/x-eml", "text/plain", "message/x-emlx":
		return strings.HasSuffix(strings.ToLower(a.Filename), ".eml")
	}
	return false
}

// cappedBuffer keeps up to max bytes and notes when there were more.
type cappedBuffer struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > c.max {
		c.over = true
		return len(p), nil
	}
	return c.b.Write(p)
}

// headerOf reads the header section of a raw message.
func headerOf(raw []byte) textproto.Header {
	h, _ := readHeader(bufio.NewReader(bytes.NewReader(raw)), func(string) {})
	return h
}
