# cli/autoconfig/ - `tlsgate autoconfig`: the files and DNS records from
# which mail clients set themselves up, with TLS endpoints only.
CLI_SRCS += cli/autoconfig/formats.c cli/autoconfig/autoconfig.c
UNIT_SRCS_CLI += tests/unit/autoconfig/test-formats.c
