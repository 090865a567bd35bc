package server

import (
	"encoding/base64"
	"encoding/json"
)

// occlumEncode writes a value as Occlum's grpc_ratls server does: the
// secret file holds base64 text and the server sends that JSON string,
// quotes included; Occlum's client strips the quotes and decodes.
func occlumEncode(v []byte) string {
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(v))
	return string(b)
}

// OcclumDecode reverses occlumEncode (for clients and tests).
func OcclumDecode(s string) ([]byte, error) {
	var b64 string
	if err := json.Unmarshal([]byte(s), &b64); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}
