package msgraph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxJSON bounds a JSON answer (a delta page of 1,000 messages with the
// selected properties is well under 1 MB).
const maxJSON = 32 << 20

// deltaSelect is the properties a delta page asks for: the id is always
// returned (learn.microsoft.com/graph/delta-query-messages, $select).
const deltaSelect = "receivedDateTime,internetMessageId"

// SendMIME sends mime as it is (our Message-ID, In-Reply-To and References
// kept) with POST /users/{u}/sendMail: the body is the base64 of the MIME,
// Content-Type text/plain; Graph answers 202 and saves a copy to Sent Items.
// Graph is reported to strip Auto-Submitted. A failure is an *Error; a
// KindTemporary one may have been sent.
func (c *Client) SendMIME(ctx context.Context, mime []byte) error {
	body := make([]byte, base64.StdEncoding.EncodedLen(len(mime)))
	base64.StdEncoding.Encode(body, mime)
	resp, err := c.do(ctx, call{
		op: "send mail", method: http.MethodPost, url: c.base() + c.userPath() + "/sendMail",
		body: body, header: http.Header{"Content-Type": {"text/plain"}}, want: http.StatusAccepted,
	})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// wellKnownFolders are the mailFolder well-known names Graph accepts in
// place of an id (learn.microsoft.com/graph/api/resources/mailfolder).
var wellKnownFolders = map[string]bool{
	"archive": true, "clutter": true, "conflicts": true, "conversationhistory": true,
	"deleteditems": true, "drafts": true, "inbox": true, "junkemail": true,
	"localfailures": true, "msgfolderroot": true, "outbox": true,
	"recoverableitemsdeletions": true, "scheduled": true, "searchfolders": true,
	"sentitems": true, "serverfailures": true, "syncissues": true,
}

type folder struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// FolderID returns the id of a folder: a well-known name ("inbox",
// "sentitems", case-insensitive) or a display name, with "/" between a
// parent and a child ("Support/Escalations"). A folder that does not exist
// is KindNotFound.
func (c *Client) FolderID(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &Error{Kind: KindNotFound, Op: "find folder", Message: "empty folder name"}
	}
	if wk := strings.ToLower(name); wellKnownFolders[wk] {
		var f folder
		if err := c.getJSON(ctx, "find folder", c.base()+c.userPath()+"/mailFolders/"+wk+"?$select=id,displayName", &f); err != nil {
			return "", err
		}
		return f.ID, nil
	}
	parent := c.base() + c.userPath() + "/mailFolders"
	var id string
	for _, part := range strings.Split(name, "/") {
		var list struct {
			Value []folder `json:"value"`
		}
		// OData string literal: a single quote is doubled.
		filter := "displayName eq '" + strings.ReplaceAll(part, "'", "''") + "'"
		u := parent + "?$filter=" + url.QueryEscape(filter) + "&$select=id,displayName"
		if err := c.getJSON(ctx, "find folder", u, &list); err != nil {
			return "", err
		}
		if len(list.Value) == 0 {
			return "", &Error{Kind: KindNotFound, Op: "find folder", Code: "ErrorFolderNotFound", Message: fmt.Sprintf("no folder %q", name)}
		}
		id = list.Value[0].ID
		parent = c.base() + c.userPath() + "/mailFolders/" + url.PathEscape(id) + "/childFolders"
	}
	return id, nil
}

// DeltaPage is one page of a delta round.
type DeltaPage struct {
	Items     []DeltaItem
	NextLink  string // more pages of this round: call Delta with it
	DeltaLink string // the round is finished: store it as the cursor
}

// DeltaItem is one message of a delta page. The same message may come
// again in a later page or round (a replay, or a change of its flags):
// callers dedupe.
type DeltaItem struct {
	ID                string
	Removed           bool // "@removed": deleted or moved out of the folder
	ReceivedDateTime  time.Time
	InternetMessageID string
	Size              int64 // 0: unknown (Graph v1.0 does not report it here)
}

type deltaResponse struct {
	Value []struct {
		ID                string    `json:"id"`
		ReceivedDateTime  string    `json:"receivedDateTime"`
		InternetMessageID string    `json:"internetMessageId"`
		Removed           *struct{} `json:"@removed"`
	} `json:"value"`
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
}

// Delta returns one page of the folder's message delta. link "" starts a
// new round (every message now in the folder); otherwise link is a
// NextLink or DeltaLink returned before, used verbatim. pageSize > 0 asks
// for at most that many items a page (Prefer: odata.maxpagesize). A delta
// state Graph no longer has is KindSyncReset: start again with DeltaSince.
func (c *Client) Delta(ctx context.Context, folderID, link string, pageSize int) (*DeltaPage, error) {
	if link == "" {
		return c.delta(ctx, c.deltaStart(folderID, ""), pageSize)
	}
	if !c.sameOrigin(link) {
		return nil, ErrForeignLink
	}
	return c.delta(ctx, link, pageSize)
}

// DeltaSince starts a new delta round of the folder limited to messages
// received at or after since ($filter=receivedDateTime ge since, the one
// filter Graph supports on message delta; it is kept in the links): the
// bounded resync after KindSyncReset.
func (c *Client) DeltaSince(ctx context.Context, folderID string, since time.Time, pageSize int) (*DeltaPage, error) {
	filter := ""
	if !since.IsZero() {
		filter = "receivedDateTime ge " + since.UTC().Format(time.RFC3339)
	}
	return c.delta(ctx, c.deltaStart(folderID, filter), pageSize)
}

func (c *Client) deltaStart(folderID, filter string) string {
	u := c.base() + c.userPath() + "/mailFolders/" + url.PathEscape(folderID) + "/messages/delta?$select=" + deltaSelect
	if filter != "" {
		u += "&$filter=" + url.QueryEscape(filter)
	}
	return u
}

func (c *Client) delta(ctx context.Context, u string, pageSize int) (*DeltaPage, error) {
	h := http.Header{"Accept": {"application/json"}}
	// Immutable ids do not change when a message moves between folders.
	h.Add("Prefer", `IdType="ImmutableId"`)
	if pageSize > 0 {
		h.Add("Prefer", "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	resp, err := c.do(ctx, call{op: "delta", method: http.MethodGet, url: u, header: h, want: http.StatusOK})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	page, err := parseDelta(io.LimitReader(resp.Body, maxJSON), c.sameOrigin)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Status = resp.StatusCode
		}
		return nil, err
	}
	return page, nil
}

// parseDelta decodes a delta page (Graph's answer, untrusted): exactly one
// link, both of the Graph origin, and every item with an id.
func parseDelta(r io.Reader, sameOrigin func(string) bool) (*DeltaPage, error) {
	var dr deltaResponse
	if err := json.NewDecoder(r).Decode(&dr); err != nil {
		return nil, &Error{Kind: KindTemporary, Op: "delta", Err: fmt.Errorf("decode page: %w", err)}
	}
	if (dr.NextLink == "") == (dr.DeltaLink == "") {
		return nil, &Error{Kind: KindPermanent, Op: "delta", Message: "a delta page must carry exactly one of @odata.nextLink and @odata.deltaLink"}
	}
	for _, l := range []string{dr.NextLink, dr.DeltaLink} {
		if l != "" && !sameOrigin(l) {
			return nil, ErrForeignLink
		}
	}
	page := &DeltaPage{NextLink: dr.NextLink, DeltaLink: dr.DeltaLink, Items: make([]DeltaItem, 0, len(dr.Value))}
	for _, v := range dr.Value {
		if v.ID == "" {
			return nil, &Error{Kind: KindPermanent, Op: "delta", Message: "a delta item without an id"}
		}
		it := DeltaItem{ID: v.ID, Removed: v.Removed != nil, InternetMessageID: v.InternetMessageID}
		if v.ReceivedDateTime != "" {
			t, err := time.Parse(time.RFC3339, v.ReceivedDateTime)
			if err != nil {
				return nil, &Error{Kind: KindPermanent, Op: "delta", Err: fmt.Errorf("item receivedDateTime: %w", err)}
			}
			it.ReceivedDateTime = t
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}

// FindMessage returns the ids of the messages in a folder (an id or a
// well-known name; "" for the whole mailbox) whose Message-ID is
// internetMessageID, angle brackets included ("<a@b>"): GET
// .../messages?$filter=internetMessageId eq '...'. It settles whether a
// sendMail whose answer was lost went out (look in "sentitems").
func (c *Client) FindMessage(ctx context.Context, folderID, internetMessageID string) ([]string, error) {
	u := c.base() + c.userPath()
	if folderID != "" {
		u += "/mailFolders/" + url.PathEscape(folderID)
	}
	filter := "internetMessageId eq '" + strings.ReplaceAll(internetMessageID, "'", "''") + "'"
	u += "/messages?$filter=" + url.QueryEscape(filter) + "&$select=id,internetMessageId"
	var ids []string
	for u != "" {
		var list struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.getJSON(ctx, "find message", u, &list); err != nil {
			return nil, err
		}
		for _, v := range list.Value {
			ids = append(ids, v.ID)
		}
		if u = list.NextLink; u != "" && !c.sameOrigin(u) {
			return nil, ErrForeignLink
		}
	}
	return ids, nil
}

// MIME streams a message's MIME (GET /users/{u}/messages/{id}/$value). The
// caller must Close it: until then it holds one of the Client's in-flight
// slots. A message gone meanwhile is KindNotFound.
func (c *Client) MIME(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, call{
		op: "get mime", method: http.MethodGet, url: c.base() + c.userPath() + "/messages/" + url.PathEscape(id) + "/$value",
		stream: true, want: http.StatusOK,
	})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) getJSON(ctx context.Context, op, u string, v any) error {
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, url: u, header: http.Header{"Accept": {"application/json"}}, want: http.StatusOK})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSON)).Decode(v); err != nil {
		return &Error{Kind: KindTemporary, Op: op, Status: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}
