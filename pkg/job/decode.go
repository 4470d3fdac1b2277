package job

// A single-pass JSON scanner for the job object. Decode used to be
// json.Unmarshal into a struct of pointers (~40 allocations, several µs per
// job); this file does the same work in one pass over the bytes and copies
// every kept string into one allocation.
//
// It reproduces encoding/json (v1, as of Go 1.26) exactly where Decode's
// result depends on it, and FuzzDecodeMatchesReference holds it to that:
//
//   - syntax: RFC 8259 grammar, nesting limited to 10000 levels, trailing
//     white space only; on a syntax error, the scanner's message ("invalid
//     character 'x' after object key:value pair", "unexpected end of JSON
//     input", ...). Syntax errors win over everything found while decoding.
//   - keys: an exact match, else a case-insensitive one under Unicode simple
//     folding (foldName, copied from encoding/json: "JOB_ID" and "ta\u017Fk_type"
//     name fields); escapes in keys are decoded first; unknown keys are
//     skipped.
//   - duplicate keys: the last value wins, as with pointer fields: null
//     resets a field to absent, a value of the wrong type leaves the earlier
//     value (or an empty string) in place and records the first type error;
//     task_characteristics objects merge into the earlier one unless a null
//     came between.
//   - strings: escapes decoded as encoding/json's unquote does, including
//     U+FFFD for unpaired surrogates.
//   - numbers: strconv.ParseFloat of the literal; out of range is a type error
//     ("number 1e999").

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxNestingDepth is encoding/json's limit.
const maxNestingDepth = 10000

// String-valued fields, indexing decoder.str; traits fields last.
const (
	fJobID = iota
	fTaskDescription
	fHistoricalPatternText
	fReplySubject
	fCorrelationID
	fLanguage
	fContext
	fOnFallback
	fDeadline
	fComplexity
	fFeatureLabel
	fTaskType
	nStrFields
)

// The other fields.
const (
	kVector  = nStrFields + iota // vector_similarity
	kTraits                      // task_characteristics
	kSchema                      // schema_version
	kUnknown = -1
)

// fieldPath is the field as encoding/json's UnmarshalTypeError.Field names it.
var fieldPath = [nStrFields]string{
	"job_id", "task_description", "historical_pattern_text", "reply_subject", "correlation_id",
	"language", "context", "on_fallback", "deadline",
	"task_characteristics.complexity", "task_characteristics.feature_label", "task_characteristics.task_type",
}

// strVal is one string field: set is the old *string being non-nil; the
// value is data[start:end], still JSON-escaped when esc.
type strVal struct {
	start, end int
	set, esc   bool
}

type decoder struct {
	data  []byte
	i     int // next byte
	depth int // open objects and arrays

	str       [nStrFields]strVal
	vecSet    bool
	vec       float64
	traitsSet bool
	schemaSet bool
	schema    []byte // raw schema_version value

	syntaxErr string // message of the syntax error, "" when none

	typeErr                bool // first type error, as encoding/json saves it
	teField, teWant, teGot string
	teNumStart, teNumEnd   int // the literal of a "number <literal>" error
}

// materialize copies every set string field into one allocation and
// returns the decoded strings ("" for unset ones).
//
// The strings share a []byte allocated here and viewed through
// unsafe.String. That is safe: the buffer is written only before the view is
// taken, no []byte referring to it leaves this function, and so the strings
// are as immutable as any other. They do not point into data, which belongs
// to the caller (the NATS client may reuse it once the handler returns).
func (d *decoder) materialize() (out [nStrFields]string) {
	total := 0
	for k := range d.str {
		if v := &d.str[k]; v.set {
			total += v.end - v.start // a decoded string is never longer than its escaped form
		}
	}
	if total == 0 {
		return out
	}
	buf := make([]byte, 0, total)
	var at [nStrFields + 1]int
	for k := range d.str {
		at[k] = len(buf)
		v := &d.str[k]
		if !v.set {
			continue
		}
		if v.esc {
			buf = appendUnquoted(buf, d.data[v.start:v.end])
		} else {
			buf = append(buf, d.data[v.start:v.end]...)
		}
	}
	at[nStrFields] = len(buf)
	s := unsafe.String(unsafe.SliceData(buf), len(buf))
	for k := range out {
		out[k] = s[at[k]:at[k+1]]
	}
	return out
}

func (d *decoder) typeError(field, want, got string) {
	if !d.typeErr {
		d.typeErr, d.teField, d.teWant, d.teGot = true, field, want, got
	}
}

// typeErrorMessage is what Decode reported for a json.UnmarshalTypeError.
func (d *decoder) typeErrorMessage() string {
	got := d.teGot
	if got == "number " {
		got += string(d.data[d.teNumStart:d.teNumEnd])
	}
	return "field " + strconv.Quote(d.teField) + ": want " + d.teWant + ", got JSON " + got
}

// errAt records a syntax error at d.i where white space would have been
// skipped: at the end of the input, that is encoding/json's "unexpected end".
func (d *decoder) errAt(context string) bool {
	if d.i >= len(d.data) {
		d.syntaxErr = "unexpected end of JSON input"
	} else {
		d.syntaxErr = "invalid character " + quoteChar(d.data[d.i]) + " " + context
	}
	return false
}

// errIn records a syntax error at d.i inside a token, where encoding/json
// feeds a space at the end of the input and complains about it.
func (d *decoder) errIn(context string) bool {
	c := byte(' ')
	if d.i < len(d.data) {
		c = d.data[d.i]
	}
	d.syntaxErr = "invalid character " + quoteChar(c) + " " + context
	return false
}

// quoteChar is encoding/json's.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// kindName is how encoding/json names the JSON value starting with c in a
// type error.
func kindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

const (
	ones = 0x0101010101010101
	lo7  = 0x7f7f7f7f7f7f7f7f
	hi   = 0x8080808080808080
)

// stringSpecial has the high bit of every byte of w that is '"', '\\' or a
// control character, and no other bits.
func stringSpecial(w uint64) uint64 {
	// A byte's high bit in (x&lo7 + lo7) | x is set exactly when the byte
	// is not zero: no carries cross bytes, so the test is exact per byte.
	q := w ^ ('"' * ones)
	b := w ^ ('\\' * ones)
	quote := ^((q&lo7 + lo7) | q) & hi
	backslash := ^((b&lo7 + lo7) | b) & hi
	control := ^((w&lo7 + 0x60*ones) | w) & hi // low 7 bits under 0x20, high bit clear
	return quote | backslash | control
}

// scanString scans the string whose opening quote is at d.i and returns
// its contents' span; d.i ends after the closing quote.
func (d *decoder) scanString() (start, end int, esc, ok bool) {
	data := d.data
	i := d.i + 1
	start = i
	for {
		for i+8 <= len(data) {
			if m := stringSpecial(binary.LittleEndian.Uint64(data[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(data) {
			if c := data[i]; c == '"' || c == '\\' || c < 0x20 {
				break
			}
			i++
		}
		if i >= len(data) {
			d.i = i
			return 0, 0, false, d.errAt("")
		}
		switch c := data[i]; {
		case c == '"':
			d.i = i + 1
			return start, i, esc, true
		case c == '\\':
			esc = true
			i++
			if i >= len(data) {
				d.i = i
				return 0, 0, false, d.errIn("in string escape code")
			}
			switch data[i] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				i++
			case 'u':
				i++
				for k := 0; k < 4; k++ {
					if i >= len(data) || !isHex(data[i]) {
						d.i = i
						return 0, 0, false, d.errIn("in \\u hexadecimal character escape")
					}
					i++
				}
			default:
				d.i = i
				return 0, 0, false, d.errIn("in string escape code")
			}
		default:
			d.i = i
			return 0, 0, false, d.errIn("in string literal")
		}
	}
}

// scanNumber scans the number starting at d.i (a '-' or a digit).
func (d *decoder) scanNumber() (start, end int, ok bool) {
	data := d.data
	i := d.i
	start = i
	if data[i] == '-' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			d.i = i
			return 0, 0, d.errIn("in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			d.i = i
			return 0, 0, d.errIn("after decimal point in numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			d.i = i
			return 0, 0, d.errIn("in exponent of numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	d.i = i
	return start, i, true
}

// scanLiteral scans true, false or null (lit), whose first byte is at d.i.
func (d *decoder) scanLiteral(lit string) bool {
	data := d.data
	i := d.i
	for k := 1; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			d.i = i + k
			return d.errIn("in literal " + lit + " (expecting '" + lit[k:k+1] + "')")
		}
	}
	d.i = i + len(lit)
	return true
}

// skipScalar scans the string, number or literal at d.i.
func (d *decoder) skipScalar() bool {
	if d.i >= len(d.data) {
		return d.errAt("looking for beginning of value")
	}
	switch c := d.data[d.i]; {
	case c == '"':
		_, _, _, ok := d.scanString()
		return ok
	case c == '-' || isDigit(c):
		_, _, ok := d.scanNumber()
		return ok
	case c == 't':
		return d.scanLiteral("true")
	case c == 'f':
		return d.scanLiteral("false")
	case c == 'n':
		return d.scanLiteral("null")
	}
	return d.errAt("looking for beginning of value")
}

// skipValue scans any value at d.i.
func (d *decoder) skipValue() bool {
	if d.i < len(d.data) && (d.data[d.i] == '{' || d.data[d.i] == '[') {
		return d.skipContainer()
	}
	return d.skipScalar()
}

// parseObject scans the object opening at d.i, the job (traits false) or
// its task_characteristics (traits true), storing the fields it knows.
func (d *decoder) parseObject(traits bool) bool {
	data := d.data
	d.depth++ // at most 2: never over the limit
	i := skipWS(data, d.i+1)
	if i < len(data) && data[i] == '}' {
		d.i = i + 1
		d.depth--
		return true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			d.i = i
			return d.errAt("looking for beginning of object key string")
		}
		d.i = i
		ks, ke, kesc, ok := d.scanString()
		if !ok {
			return false
		}
		i = skipWS(data, d.i)
		if i >= len(data) || data[i] != ':' {
			d.i = i
			return d.errAt("after object key")
		}
		d.i = skipWS(data, i+1)
		if !d.field(lookupKey(data[ks:ke], kesc, traits)) {
			return false
		}
		i = skipWS(data, d.i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
			continue
		}
		if i < len(data) && data[i] == '}' {
			d.i = i + 1
			d.depth--
			return true
		}
		d.i = i
		return d.errAt("after object key:value pair")
	}
}

// field scans the value at d.i into field id.
func (d *decoder) field(id int) bool {
	data := d.data
	if id == kUnknown {
		return d.skipValue()
	}
	if d.i >= len(data) {
		return d.errAt("looking for beginning of value")
	}
	c := data[d.i]
	if c == 'n' {
		if !d.scanLiteral("null") {
			return false
		}
		switch id {
		case kVector:
			d.vecSet = false
		case kTraits:
			d.traitsSet = false
			d.str[fComplexity], d.str[fFeatureLabel], d.str[fTaskType] = strVal{}, strVal{}, strVal{}
		case kSchema:
			d.schemaSet, d.schema = false, nil
		default:
			d.str[id] = strVal{}
		}
		return true
	}
	switch id {
	case kVector:
		if c == '-' || isDigit(c) {
			s, e, ok := d.scanNumber()
			if !ok {
				return false
			}
			d.vecSet = true
			f, err := strconv.ParseFloat(string(data[s:e]), 64)
			if err != nil {
				if !d.typeErr {
					d.typeError("vector_similarity", "float64", "number ")
					d.teNumStart, d.teNumEnd = s, e
				}
				return true
			}
			d.vec = f
			return true
		}
		if !d.skipValue() {
			return false
		}
		d.vecSet = true
		d.typeError("vector_similarity", "float64", kindName(c))
		return true
	case kTraits:
		if c == '{' {
			d.traitsSet = true
			return d.parseObject(true)
		}
		if !d.skipValue() {
			return false
		}
		d.traitsSet = true
		d.typeError("task_characteristics", "job.wireTraits", kindName(c))
		return true
	case kSchema:
		s := d.i
		if !d.skipValue() {
			return false
		}
		d.schemaSet, d.schema = true, data[s:d.i]
		return true
	}
	// A string field.
	if c == '"' {
		s, e, esc, ok := d.scanString()
		if !ok {
			return false
		}
		d.str[id] = strVal{start: s, end: e, set: true, esc: esc}
		return true
	}
	if !d.skipValue() {
		return false
	}
	d.typeError(fieldPath[id], "string", kindName(c))
	if !d.str[id].set {
		d.str[id] = strVal{set: true} // encoding/json allocated the pointer
	}
	return true
}

// lookupKey maps a raw key (escaped when esc) to its field, as encoding/json
// does: an exact match, else a case-insensitive one.
func lookupKey(raw []byte, esc, traits bool) int {
	var kb [64]byte
	key := raw
	if esc {
		key = appendUnquoted(kb[:0], raw)
	}
	if id := exactKey(key, traits); id != kUnknown {
		return id
	}
	if len(key) > 3*len("historical_pattern_text") { // folding at most triples a byte (k → U+212A)
		return kUnknown
	}
	var fb [80]byte
	return foldedKey(appendFoldedName(fb[:0], key), traits)
}

func exactKey(k []byte, traits bool) int {
	if traits {
		switch string(k) {
		case "complexity":
			return fComplexity
		case "feature_label":
			return fFeatureLabel
		case "task_type":
			return fTaskType
		}
		return kUnknown
	}
	switch string(k) {
	case "job_id":
		return fJobID
	case "task_description":
		return fTaskDescription
	case "historical_pattern_text":
		return fHistoricalPatternText
	case "vector_similarity":
		return kVector
	case "task_characteristics":
		return kTraits
	case "reply_subject":
		return fReplySubject
	case "correlation_id":
		return fCorrelationID
	case "language":
		return fLanguage
	case "context":
		return fContext
	case "on_fallback":
		return fOnFallback
	case "deadline":
		return fDeadline
	case "schema_version":
		return kSchema
	}
	return kUnknown
}

// foldedKey is exactKey for a key folded by appendFoldedName.
func foldedKey(k []byte, traits bool) int {
	if traits {
		switch string(k) {
		case "COMPLEXITY":
			return fComplexity
		case "FEATURE_LABEL":
			return fFeatureLabel
		case "TASK_TYPE":
			return fTaskType
		}
		return kUnknown
	}
	switch string(k) {
	case "JOB_ID":
		return fJobID
	case "TASK_DESCRIPTION":
		return fTaskDescription
	case "HISTORICAL_PATTERN_TEXT":
		return fHistoricalPatternText
	case "VECTOR_SIMILARITY":
		return kVector
	case "TASK_CHARACTERISTICS":
		return kTraits
	case "REPLY_SUBJECT":
		return fReplySubject
	case "CORRELATION_ID":
		return fCorrelationID
	case "LANGUAGE":
		return fLanguage
	case "CONTEXT":
		return fContext
	case "ON_FALLBACK":
		return fOnFallback
	case "DEADLINE":
		return fDeadline
	case "SCHEMA_VERSION":
		return kSchema
	}
	return kUnknown
}

// appendFoldedName and foldRune are encoding/json's (fold.go): foldName(x)
// == foldName(y) exactly when bytes.EqualFold(x, y).
func appendFoldedName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// getu4 is encoding/json's: the \uXXXX at the start of s, or -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendUnquoted appends the decoded contents s of a string that
// scanString accepted (so well-formed, and valid UTF-8 as Decode checked),
// as encoding/json's unquoteBytes decodes them.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		if s[r] != '\\' {
			n := bytes.IndexByte(s[r:], '\\')
			if n < 0 {
				return append(dst, s[r:]...)
			}
			dst = append(dst, s[r:r+n]...)
			r += n
			continue
		}
		r++
		switch c := s[r]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			rr := getu4(s[r-1:])
			r += 5
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
					r += 6
					dst = utf8.AppendRune(dst, dec)
					continue
				}
				rr = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, rr)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		r++
	}
	return dst
}
