package producer

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hybridscore/hybridscore/pkg/job"
)

// Source streams jobs from a JSONL or CSV file, one at a time, so a file of
// a million jobs never sits in memory.
type Source interface {
	// Next returns the next job, or io.EOF. A malformed line is an error
	// naming the line; callers may skip it and go on.
	Next() (job.Wire, error)
}

// NewSource reads JSONL ("jsonl") or CSV ("csv", with a header row).
func NewSource(r io.Reader, format string) (Source, error) {
	switch format {
	case "jsonl", "json", "ndjson":
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		return &jsonlSource{sc: sc}, nil
	case "csv":
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			return nil, fmt.Errorf("csv header: %w", err)
		}
		cols := map[string]int{}
		for i, h := range header {
			cols[strings.TrimSpace(strings.ToLower(h))] = i
		}
		for _, need := range []string{"task_description", "historical_pattern_text", "vector_similarity"} {
			if _, ok := cols[need]; !ok {
				return nil, fmt.Errorf("csv header lacks column %q", need)
			}
		}
		return &csvSource{r: cr, cols: cols, line: 1}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want jsonl or csv)", format)
}

type jsonlSource struct {
	sc   *bufio.Scanner
	line int
}

func (s *jsonlSource) Next() (job.Wire, error) {
	for s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var w job.Wire
		if err := json.Unmarshal(b, &w); err != nil {
			return w, fmt.Errorf("line %d: %w", s.line, err)
		}
		return w, nil
	}
	if err := s.sc.Err(); err != nil {
		return job.Wire{}, fmt.Errorf("line %d: %w", s.line+1, err)
	}
	return job.Wire{}, io.EOF
}

type csvSource struct {
	r    *csv.Reader
	cols map[string]int
	line int
}

func (s *csvSource) Next() (job.Wire, error) {
	rec, err := s.r.Read()
	s.line++
	if err != nil {
		if errors.Is(err, io.EOF) {
			return job.Wire{}, io.EOF
		}
		return job.Wire{}, fmt.Errorf("line %d: %w", s.line, err)
	}
	get := func(name string) string {
		if i, ok := s.cols[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	w := job.Wire{JobID: get("job_id"), TaskDescription: get("task_description"), HistoricalPatternText: get("historical_pattern_text"),
		CorrelationID: get("correlation_id"), Language: get("language"), Context: get("context"), OnFallback: get("on_fallback"),
		Deadline: get("deadline"), ReplySubject: get("reply_subject")}
	v, err := strconv.ParseFloat(strings.TrimSpace(get("vector_similarity")), 64)
	if err != nil {
		return w, fmt.Errorf("line %d: vector_similarity: %w", s.line, err)
	}
	w.VectorSimilarity = v
	if c, l, t := get("complexity"), get("feature_label"), get("task_type"); c != "" || l != "" || t != "" {
		w.TaskCharacteristics = &job.WireCharacteristics{Complexity: c, FeatureLabel: l, TaskType: t}
	}
	return w, nil
}

// DeriveJobID returns a job_id computed from the job's content, so that
// publishing the same job again deduplicates.
func DeriveJobID(w job.Wire) string {
	h := sha256.New()
	c := job.WireCharacteristics{}
	if w.TaskCharacteristics != nil {
		c = *w.TaskCharacteristics
	}
	for _, s := range []string{w.TaskDescription, w.HistoricalPatternText, strconv.FormatFloat(w.VectorSimilarity, 'g', -1, 64),
		c.Complexity, c.FeatureLabel, c.TaskType, w.Language, w.Context, w.CorrelationID} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return "h-" + hex.EncodeToString(h.Sum(nil))[:32]
}
