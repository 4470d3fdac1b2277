package job

import (
	"encoding/base64"
	"strings"
)

// ResultsPrefix begins every subject of the results stream.
const ResultsPrefix = "scoring.results."

// ResultSubject is the subject that stores the result of job jobID of lane:
// scoring.results.<lane>.<token>, one subject per job. The server keeps at
// most one message on it (docs/contract.md#guarantees), so the stored result
// is itself the record that the job was answered; a subscriber to every
// result of a lane subscribes to scoring.results.<lane>.>.
func ResultSubject(lane, jobID string) string {
	return ResultsPrefix + lane + "." + ResultToken(jobID)
}

// ResultToken is the subject token of a job id: a valid id with each "."
// written as "~" (a character ids may not hold, so no two ids share a
// token), any other string (an id read from a malformed job's Nats-Msg-Id)
// as "=" and its unpadded base64url.
func ResultToken(jobID string) string {
	if validJobID(jobID) {
		return strings.ReplaceAll(jobID, ".", "~")
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(jobID))
}
