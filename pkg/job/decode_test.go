package job

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/schemas"
)

// sameDecode reports how Decode and referenceDecode differ on data, or "".
func sameDecode(data []byte, limits Limits) string {
	j1, p1, err1 := Decode(data, limits)
	j2, p2, err2 := referenceDecode(data, limits)
	if (err1 == nil) != (err2 == nil) {
		return "errors differ: " + errString(err1) + " | reference: " + errString(err2)
	}
	if err1 != nil {
		var e1, e2 *Error
		if !errors.As(err1, &e1) || !errors.As(err2, &e2) || !errors.Is(err1, ErrInvalid) {
			return "error outside the taxonomy: " + errString(err1)
		}
		if *e1 != *e2 {
			return "errors differ: " + err1.Error() + " | reference: " + err2.Error()
		}
		if j1 != nil {
			return "job returned with an error"
		}
	}
	if p1 != p2 {
		return "partials differ"
	}
	if err1 != nil {
		return ""
	}
	if !j1.Deadline.Equal(j2.Deadline) || j1.Deadline.Location().String() != j2.Deadline.Location().String() ||
		j1.Deadline.String() != j2.Deadline.String() {
		return "deadlines differ: " + j1.Deadline.String() + " | reference: " + j2.Deadline.String()
	}
	if math.Float64bits(j1.VectorSimilarity) != math.Float64bits(j2.VectorSimilarity) {
		return "vector similarities differ"
	}
	a, b := *j1, *j2
	a.Deadline = b.Deadline
	if !reflect.DeepEqual(a, b) {
		return "jobs differ"
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// tricky are inputs where a hand-written decoder is likely to part from
// encoding/json.
var tricky = []string{
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`,
	" \t\r\n{\"job_id\":\"j-1\",\"task_description\":\"t\",\"historical_pattern_text\":\"p\",\"vector_similarity\":0.5} \n",
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}x`,
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}}`,
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5} {}`,
	// keys: case, Unicode folding (K is U+212A, ſ is U+017F), escapes
	`{"JOB_ID":"j-1","Task_Description":"t","historical_pattern_TEXT":"p","VECTOR_similarity":0.5,"tas\u212A_characteri\u017Ftics":{"TAS\u212A_TYPE":"x","complexity":"simple"}}`,
	`{"job\u005fid":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"ſchema_version":1}`,
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"job_ıd":"zz"}`,
	`{"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"JOB_İD":"zz"}`,
	// duplicates, nulls, type errors
	`{"job_id":"a","job_id":null,"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`,
	`{"job_id":"a","job_id":7,"task_description":"t","historical_pattern_text":"p","vector_similarity":0.5}`,
	`{"job_id":null,"job_id":[1],"reply_subject":"a.b","reply_subject":{},"correlation_id":"c","correlation_id":true}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"reply_subject":""}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"reply_subject":null,"on_fallback":null,"deadline":null,"language":null,"context":""}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"on_fallback":""}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"deadline":""}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5,"vector_similarity":null}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":"0.5"}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":true}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":-0}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1e-400}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":-1e999,"task_description":5}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":0.50000000000000000000000000000000000000001}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":5e-1,"schema_version":1.0}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1E0,"schema_version":[1, 2 ,{"a" : null}]}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"schema_version":"1"}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"schema_version":2,"schema_version":null}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"schema_version":1,"schema_version":-1}`,
	// task_characteristics: merging, null in between, wrong types
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":{"complexity":"a"},"task_characteristics":{"task_type":"b"}}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":{"complexity":"a"},"task_characteristics":null,"task_characteristics":{}}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":{"complexity":"a"},"task_characteristics":null}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":"x"}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":{"complexity":null,"feature_label":{"x":[]},"job_id":1}}`,
	`{"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"task_characteristics":{"complexity":"c","complexity":null}}`,
	// strings: escapes, surrogates
	`{"job_id":"j","task_description":"\"\\\/\b\f\n\r\t\u00e9\u20AC\ud83d\ude00","historical_pattern_text":"p","vector_similarity":1}`,
	`{"job_id":"j","task_description":"\ud800","historical_pattern_text":"\udc00\ud800\ud800\ud83d\u0041","vector_similarity":1}`,
	`{"job_id":"j","task_description":"\ud83d\ude0","historical_pattern_text":"p","vector_similarity":1}`,
	`{"job_id":"j","task_description":"\ud83d\ude00\ud83d","historical_pattern_text":"x\ud83dy","vector_similarity":1,"correlation_id":"\u0000"}`,
	`{"job_id":"j\u002d1","task_description":"t","historical_pattern_text":"p","vector_similarity":1,"language":"\u00e9\u00e9"}`,
	// syntax errors, each context of encoding/json's scanner
	`{`, `{ `, `{"`, `{"a`, `{"a"`, `{"a" `, `{"a":`, `{"a": `, `{"a":1`, `{"a":1,`, `{"a":1 ,`,
	`{"a":t`, `{"a":tr`, `{"a":tru`, `{"a":trux}`, `{"a":f`, `{"a":fa`, `{"a":fal`, `{"a":fals`, `{"a":falsy}`,
	`{"a":n`, `{"a":nu`, `{"a":nul`, `{"a":nulL}`, `{"a":-`, `{"a":-}`, `{"a":01}`, `{"a":1.}`, `{"a":1.`,
	`{"a":1e}`, `{"a":1e`, `{"a":1e+`, `{"a":1e+}`, `{"a":.5}`, `{"a":+1}`, `{"a":1.5.3}`, `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":"\`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12`, `{"a":"\u`, `{"a":"\'"}`, "{\"a\":\"\t\"}", "{\"a\":\"\x7f\"}",
	`{"a":[}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":[,]}`, `{"a":[]]}`, `{"a":{]}`, `{"a":{"b"}}`, `{"a":{"b":1,}}`,
	`{"a":{"b":1]}`, `{"a":[1}`, `{,}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`, `{'a':1}`, `{a:1}`, `{"a":1}]`,
	`{"a":é}`, "{\"a\":\u0080}", `{"a":"é`, `{"a":1}` + "\x00", `{"a":1}` + "\t\x01",
	`{"vector_similarity":"x`, `{"task_characteristics":{"complexity":`, `{"task_characteristics":{"complexity":"a"`,
	`{"task_characteristics":{"complexity":"a"}`, `{"task_characteristics":{"complexity" "a"}}`, `{"task_characteristics":{,}}`,
	`{"job_id":[1,2,{"x":[true,false,null,"s",-0.5e+3]}],"job_id":[`,
	// not an object, not UTF-8
	``, ` `, `[]`, `null`, `"x"`, `1`, "\xff", "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}", "\xef\xbb\xbf{}",
}

func TestDecodeMatchesReferenceOnTrickyInputs(t *testing.T) {
	full, _ := schemas.FS.ReadFile("examples/job-full.json")
	for _, doc := range append(tricky, string(full), string(largeJob())) {
		if diff := sameDecode([]byte(doc), Limits{}); diff != "" {
			t.Errorf("%q: %s", doc, diff)
		}
	}
}

// jobGen writes random job-shaped JSON: known keys in every spelling
// encoding/json accepts, values of every type, duplicates, white space; then
// sometimes corrupts a byte or truncates.
type jobGen struct {
	r *rand.Rand
	b []byte
}

var (
	genKeys = []string{
		"job_id", "task_description", "historical_pattern_text", "vector_similarity", "task_characteristics",
		"reply_subject", "correlation_id", "language", "context", "on_fallback", "deadline", "schema_version",
		"JOB_ID", "Task_Description", "historical_pattern_TEXT", "VECTOR_SIMILARITY", "ta\u017Fk_characteri\u212Atics",
		"tas\u212A_characteristics", "job\u005fid", "\u006aob_id", "Reply_Subject", "ON_FALLBACK", "\u0073chema_version",
		"job_ıd", "x", "", "pad", "job_id ", "complexity", "feature_label", "task_type",
	}
	genTraitKeys = []string{"complexity", "feature_label", "task_type", "COMPLEXITY", "Feature_Label", "ta\u017Fk_type", "tas\u212A_type", "x", "job_id"}
	genStrings   = []string{
		"", "j-1", "j 1", "a.b", "scoring.results.x", "scoring.jobs.x", "scoring.dlq.x", "$KV.a", "results.>", "a..b",
		"degrade", "retry", "pray", "Degrade", "en", "pattern_matching", "complex", "auth",
		"2030-01-01T00:00:00Z", "2030-01-01T00:00:00.5+02:00", "2030-01-01T00:00:00-00:00", "2030-02-30T00:00:00Z", "tomorrow",
		"\\n\\\"\\/\\b\\u00e9\\u20ac", "\\ud83d\\ude00", "\\ud83d", "\\ude00\\ud83d x", "\\u0000", "é€😀",
		strings.Repeat("c", 128), strings.Repeat("c", 129), strings.Repeat("é", 128), strings.Repeat("é", 129), strings.Repeat("l", 257),
	}
	genNumbers = []string{"0", "1", "0.5", "-0", "-0.1", "1.5", "1e999", "-1e999", "1e-400", "1.0", "2", "10", "0.85", "1E0", "5e-1"}
	genSpace   = []string{"", "", "", " ", "\n  ", "\t", "\r\n"}
	genNoise   = []byte("{}[]:,\"\\ntfu0123456789.-+eE \x00\x1f\x7f\xc3\xa9\xff")
)

func (g *jobGen) ws() { g.b = append(g.b, genSpace[g.r.IntN(len(genSpace))]...) }

func (g *jobGen) str(s string) { g.b = append(append(append(g.b, '"'), s...), '"') }

func (g *jobGen) value(depth int, traits bool) {
	g.ws()
	switch n := g.r.IntN(20); {
	case n < 9:
		g.str(genStrings[g.r.IntN(len(genStrings))])
	case n < 13:
		g.b = append(g.b, genNumbers[g.r.IntN(len(genNumbers))]...)
	case n < 15:
		g.b = append(g.b, [...]string{"null", "true", "false"}[g.r.IntN(3)]...)
	case n < 17 && depth < 4:
		g.b = append(g.b, '[')
		for i := range g.r.IntN(3) {
			if i > 0 {
				g.b = append(g.b, ',')
			}
			g.value(depth+1, false)
		}
		g.ws()
		g.b = append(g.b, ']')
	case depth < 4:
		keys := genKeys
		if traits {
			keys = genTraitKeys
		}
		g.object(depth+1, keys, g.r.IntN(4))
	default:
		g.b = append(g.b, "null"...)
	}
	g.ws()
}

func (g *jobGen) object(depth int, keys []string, n int) {
	g.b = append(g.b, '{')
	g.fields(depth, keys, n, false)
	g.ws()
	g.b = append(g.b, '}')
}

func (g *jobGen) fields(depth int, keys []string, n int, comma bool) {
	for range n {
		if comma {
			g.b = append(g.b, ',')
		}
		comma = true
		g.ws()
		k := keys[g.r.IntN(len(keys))]
		g.str(k)
		g.ws()
		g.b = append(g.b, ':')
		g.value(depth, strings.Contains(strings.ToLower(k), "characteri"))
	}
}

func (g *jobGen) job() []byte {
	g.b = g.b[:0]
	g.ws()
	g.b = append(g.b, '{')
	core := g.r.IntN(4) > 0 // mostly a valid core, so that later checks are reached
	if core {
		g.b = append(g.b, `"job_id":"j-1","task_description":"t","historical_pattern_text":"p","vector_similarity":0.5`...)
	}
	g.fields(1, genKeys, g.r.IntN(8), core)
	g.ws()
	g.b = append(g.b, '}')
	g.ws()
	switch g.r.IntN(10) {
	case 0:
		g.b = g.b[:g.r.IntN(len(g.b)+1)]
	case 1:
		g.b[g.r.IntN(len(g.b))] = genNoise[g.r.IntN(len(genNoise))]
	case 2:
		i := g.r.IntN(len(g.b))
		g.b = append(g.b[:i], g.b[i+1:]...)
	}
	return g.b
}

func TestDecodeMatchesReferenceOnGeneratedInputs(t *testing.T) {
	g := &jobGen{r: rand.New(rand.NewPCG(1, 2))}
	n := 30000
	if testing.Short() {
		n = 3000
	}
	codes := map[string]int{}
	for range n {
		doc := g.job()
		limits := Limits{}
		if g.r.IntN(8) == 0 {
			limits = Limits{MaxTextBytes: g.r.IntN(300), MaxJobBytes: g.r.IntN(600)}
		}
		if diff := sameDecode(doc, limits); diff != "" {
			t.Fatalf("%q %+v: %s", doc, limits, diff)
		}
		_, _, err := Decode(doc, limits)
		var e *Error
		if errors.As(err, &e) {
			codes[e.Code]++
		} else {
			codes["ok"]++
		}
	}
	for _, c := range []string{"ok", CodeInvalidJSON, CodeInvalidUTF8, CodeMissingField, CodeInvalidField, CodeTooLarge} {
		if codes[c] < n/200 {
			t.Errorf("only %d of %d generated jobs came out %s: the generator needs a look", codes[c], n, c)
		}
	}
	t.Logf("outcomes: %v", codes)
}

func TestDecodeMatchesReferenceOnDeepNesting(t *testing.T) {
	limits := Limits{MaxJobBytes: 1 << 20}
	for _, depth := range []int{64, 65, 9998, 9999, 10000} { // the job object is one level
		for _, open := range []string{"[", `{"k":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			inner := strings.Repeat(open, depth) + strings.Repeat(close, depth)
			for _, doc := range []string{
				`{"x":` + inner + `,"job_id":"j","task_description":"t","historical_pattern_text":"p","vector_similarity":1}`,
				`{"x":` + strings.Repeat(open, depth) + `1` + strings.Repeat(close, depth-1) + `}`,
				`{"job_id":` + inner + `}`,
				`{"schema_version":` + inner + `}`,
			} {
				if diff := sameDecode([]byte(doc), limits); diff != "" {
					t.Errorf("depth %d %s: %s", depth, open, diff)
				}
			}
		}
	}
}

func TestDecodeCopiesStrings(t *testing.T) {
	doc, _ := schemas.FS.ReadFile("examples/job-full.json")
	data := append([]byte(nil), doc...)
	j, p, err := Decode(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want, wantP, _ := referenceDecode(doc, Limits{})
	for i := range data {
		data[i] = 'x'
	}
	if j.JobID != want.JobID || j.TaskDescription != want.TaskDescription || *j.Characteristics != *want.Characteristics ||
		j.ReplySubject != want.ReplySubject || p != wantP {
		t.Fatalf("decoded strings alias the message: %+v", j)
	}
}

func TestDecodeAllocations(t *testing.T) {
	doc, _ := schemas.FS.ReadFile("examples/job-full.json")
	// The job with its characteristics, and every string in one buffer.
	if n := testing.AllocsPerRun(100, func() { _, _, _ = Decode(doc, Limits{}) }); n > 2 {
		t.Fatalf("%v allocations per job, want at most 2", n)
	}
}

func FuzzDecodeMatchesReference(f *testing.F) {
	full, _ := schemas.FS.ReadFile("examples/job-full.json")
	f.Add(full, uint16(0), uint16(0))
	f.Add(full, uint16(20), uint16(0))
	f.Add(full, uint16(0), uint16(300))
	for _, doc := range tricky {
		f.Add([]byte(doc), uint16(0), uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxText, maxJob uint16) {
		if diff := sameDecode(data, Limits{MaxTextBytes: int(maxText), MaxJobBytes: int(maxJob)}); diff != "" {
			t.Fatalf("%q: %s", data, diff)
		}
	})
}

func FuzzValidSubjectMatchesReference(f *testing.F) {
	for _, s := range []string{"", ".", "a", "a.b", ".a", "a.", "a..b", "a.*", "a.>", "a.b*", "a b", "a\x00", "\xff", "scoring.results.x", "$KV.a", strings.Repeat("a", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSubject(s), referenceValidSubject(s); got != want {
			t.Fatalf("ValidSubject(%q) = %v, reference %v", s, got, want)
		}
	})
}

// BenchmarkReferenceDecode is the decoder Decode replaced, on the same job
// as BenchmarkDecode.
func BenchmarkReferenceDecode(b *testing.B) {
	doc, _ := schemas.FS.ReadFile("examples/job-full.json")
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = referenceDecode(doc, Limits{})
	}
}

func largeJob() []byte {
	text := strings.Repeat(`Implement OAuth2 \"authentication\" with JWT tokens, caf\u00e9 \ud83d\ude00.\n`, 60) // ~4.4 KB
	return []byte(`{"job_id":"j-1","task_description":"` + text + `","historical_pattern_text":"` + text +
		`","vector_similarity":0.5,"correlation_id":"req-7f3a"}`)
}

func BenchmarkDecodeLarge(b *testing.B) {
	doc := largeJob()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = Decode(doc, Limits{})
	}
}

func BenchmarkReferenceDecodeLarge(b *testing.B) {
	doc := largeJob()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = referenceDecode(doc, Limits{})
	}
}

// Every code a rejection carries is Rejected; an expired job's and the
// worker's own dead-letter reasons are not.
func TestRejectedCodes(t *testing.T) {
	for _, c := range []string{CodeInvalidJSON, CodeInvalidUTF8, CodeMissingField, CodeInvalidField, CodeTooLarge} {
		if !Rejected(c) {
			t.Errorf("%s not Rejected", c)
		}
	}
	for _, c := range []string{CodeDeadlineExceeded, "job_id_conflict", "max_deliveries", "internal", ""} {
		if Rejected(c) {
			t.Errorf("%q Rejected", c)
		}
	}
}
