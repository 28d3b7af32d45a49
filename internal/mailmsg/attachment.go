package mailmsg

import (
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFilenameBytes keeps names storable on every common filesystem.
const maxFilenameBytes = 200

// extByType gives the extension for an attachment without a name. It is a
// fixed table, not the system's mime.types, so names do not depend on the
// machine.
var extByType = map[string]string{
	"application/pdf":               ".pdf",
	"application/zip":               ".zip",
	"application/json":              ".json",
	"application/xml":               ".xml",
	"application/octet-stream":      ".bin",
	"application/ms-tnef":           ".dat",
	"application/vnd.ms-tnef":       ".dat",
	"application/msword":            ".doc",
	"application/vnd.ms-excel":      ".xls",
	"application/pkcs7-signature":   ".p7s",
	"application/x-pkcs7-signature": ".p7s",
	"application/pgp-signature":     ".asc",
	"application/pgp-encrypted":     ".asc",
	"application/ics":               ".ics",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
	"image/png":                        ".png",
	"image/jpeg":                       ".jpg",
	"image/jpg":                        ".jpg",
	"image/gif":                        ".gif",
	"image/webp":                       ".webp",
	"image/bmp":                        ".bmp",
	"image/svg+xml":                    ".svg",
	"image/tiff":                       ".tif",
	"text/plain":                       ".txt",
	"text/html":                        ".html",
	"text/csv":                         ".csv",
	"text/calendar":                    ".ics",
	"text/vcard":                       ".vcf",
	"text/x-vcard":                     ".vcf",
	"text/rfc822-headers":              ".txt",
	"message/rfc822":                   ".eml",
	"message/global":                   ".eml",
	"message/delivery-status":          ".txt",
	"message/disposition-notification": ".txt",
	"audio/mpeg":                       ".mp3",
	"video/mp4":                        ".mp4",
}

// sanitizeFilename makes a decoded attachment name safe to store and show:
// only the last path element, no control or format characters, no
// characters Windows forbids, no leading dots, bounded length with the
// extension kept. An empty result becomes "attachment-N" plus an extension
// from the media type.
func sanitizeFilename(name, mediaType string, n int) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base("/" + name)
	if name == "/" {
		name = ""
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		case strings.ContainsRune(`/\:*?"<>|`, r):
			return '_'
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	name = strings.TrimLeft(name, ". ")
	name = strings.TrimRight(name, ". ")
	if len(name) > maxFilenameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		name = truncateBytes(name[:len(name)-len(ext)], maxFilenameBytes-len(ext)) + ext
	}
	if name == "" {
		ext, ok := extByType[mediaType]
		if !ok {
			ext = ".bin"
		}
		name = "attachment-" + strconv.Itoa(n) + ext
	}
	return name
}
