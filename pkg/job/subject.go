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

// MsgID is the Nats-Msg-Id a producer gives job jobID of lane:
// <lane>/<job_id>. A job is its lane and its job_id, while a jobs stream
// drops a second message with the same Nats-Msg-Id inside its duplicate
// window whatever its subject: with the job_id alone, the same id on
// another lane (a job id derived from content, submitted to two lanes)
// would be dropped there and never answered.
func MsgID(lane, jobID string) string { return lane + "/" + jobID }

// ContentMsgID is the Nats-Msg-Id of a job published again with other
// content than a copy the jobs stream may still remember (a job corrected
// after its rejection, inside the duplicate window): <lane>/<job_id>/<digest>.
// The same content published twice is still stored once.
func ContentMsgID(lane, jobID, digest string) string { return lane + "/" + jobID + "/" + digest }

// JobIDOfMsgID is the job id a job message of lane names by its
// Nats-Msg-Id, read when its payload cannot be: msgID itself when it is a
// valid job id (a producer that sets the job_id alone), the id of
// MsgID(lane, id) or ContentMsgID(lane, id, digest), else "".
func JobIDOfMsgID(lane, msgID string) string {
	if validJobID(msgID) {
		return msgID
	}
	if rest, ok := strings.CutPrefix(msgID, lane+"/"); ok {
		// A job id holds no "/": what follows one is a digest.
		if id, _, _ := strings.Cut(rest, "/"); validJobID(id) {
			return id
		}
	}
	return ""
}
