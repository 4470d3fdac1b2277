package job_test

import (
	"errors"
	"fmt"

	"github.com/hybridscore/hybridscore/pkg/job"
)

func ExampleDecode() {
	_, partial, err := job.Decode([]byte(`{"job_id":"j-7","task_description":"t","historical_pattern_text":"p","vector_similarity":1.4}`), job.Limits{})
	var e *job.Error
	if errors.As(err, &e) {
		fmt.Println(partial.JobID, e.Code)
	}
	// Output: j-7 invalid_field
}
