"""schemathesis hooks of tests/api-fuzz/run (loaded through SCHEMATHESIS_HOOKS).

PUT /api/v1/policy takes a policy file as `application/toml`: the generated
string goes on the wire as it is, like text/plain.
"""

import schemathesis

schemathesis.serializer.alias("application/toml", "text/plain")
