"""Generated gRPC and protobuf code for asps.v1 (see scripts/genproto.py). Do not edit."""
