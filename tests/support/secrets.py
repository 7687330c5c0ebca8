"""A corpus of secrets as services leak them in their logs, and of near misses that must stay.

Every value is made up (random, from a fixed seed, or a throwaway key made for this file), but
shaped like the real thing. `SECRETS` pairs a log line with the parts of it that must never leave
the agent; `NEAR_MISSES` are lines that look close and must come through unchanged. The unit tests
(tests/unit/test_redact.py) and the end-to-end test (tests/llm/test_redaction.py) share them.
"""

from __future__ import annotations

EC_KEY = """\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIIaZcF43/WC+rQ7ybpxQRjXnuV0LD6wozIKt3Hp1vmjfoAoGCCqGSM49
AwEHoUQDQgAEH/a5BrTLSuD4g8A2VfeiZuiLSr/Y3Jw+611fCtCvaY+sqlOWyRBK
9y1ZdxlTLkGsiaVamJ+itHd28kg1rpyloA==
-----END EC PRIVATE KEY-----"""

OPENSSH_KEY = """\
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACAGzXd6CIuMRoTwYNzyBgHdpBTekymoqdvKPipEOnifxQAAAIghNF3NITRd
zQAAAAtzc2gtZWQyNTUxOQAAACAGzXd6CIuMRoTwYNzyBgHdpBTekymoqdvKPipEOnifxQ
AAAEA8l8278NQUseKlXfenj8CGgkqGuZVJjh+G26n3XTDnEgbNd3oIi4xGhPBg3PIGAd2k
FN6TKaip28o+KkQ6eJ/FAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----"""

PKCS8_KEY = """\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEID+AmVtKCHKintzHsc2FkWb2JD9Da0i72clxb/Xm8fDT
-----END PRIVATE KEY-----"""

ENCRYPTED_RSA_KEY = """\
-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,43EBD77AE5FA08336370B6C4C58A71D9

W/Hzxuyux10hFWkM3GffMW/DOKJrKhJeqrSG6fV4kYtklLoIy13eZA1CbTxQ3gyF
M2oyzIiFPuOgTIKbx3r9aiSBDMubRhQhMX/K9KsXqV4aiuEK+u7Jz3dYBwDowrgO
/P0ZL7aSbJq/iQzF4PN7asdzqe1oCrqaN7sCzRMShg+4EA5sgw6ukgKjuzGXHng8
DsEeiUueIP2V7bkW+B6j/CeCvxSh6sngOZ1XDRfxCEfEzPxzo0CpMsqG7f3kTPL6
dLZqmhKo6nt8naRYI7+/ys8rlLjELX4mWwvAcjHYt0H/O8J1kMPrKTd1mpvfhQ1Q
xjGcd+U+HwOglxbHZenXOQ6OqH9CCkLU5mLnAvdkct/OFi5pz+bA60daGKu3Vs4/
8fmPGf6sZwd6pWt+Pkf48w5IIFrPPY9W3+Aiq2LpDCfycBnzNtuyEwhLpi95i6EG
Z9LyYKTjWA1KR/3Bpy/BmSY6dPIeIyIL7alcn9twEIRykxxv/zjk8VUhKpTPE3gO
8a+U+nOX0vr8Q+g8AJAlSwJp9ISuaIDZYJz9JZemVg9rftMPDMk2Lni/3SN6Z+UV
lrIxQTN9JPz/zdvC0EQae0ytjb707cz45hnv6rzzCZKzx2fOu0hGrftNLieNqvH9
x/MElO0peGd6hUEikrSK6pwGVaFGsuczoPYbijfAp1hBqMZJsr9uY4BXz7160qEL
Z1fRgeuMCNyBFtMXK586zcZ0SOgbqxluxgHAX+vshkpihs1xF3Rws1b2y1Iu+lks
6Jf/wYIfxOy/4sO0DJN4ZWXIBO0SpGRLqU+LdYbJGNjCHJ/sNmQyKzR2h86l6Qcj
-----END RSA PRIVATE KEY-----"""

JWT = (
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAic3ZjLW9yZGVycyIsICJpYXQiOiAxNzE4MDAwMDAw"
    "LCAiZXhwIjogMTcxODAwMzYwMCwgInNjb3BlIjogIm9yZGVyczp3cml0ZSJ9.vjTt5L8XOkzWNChPVMPcwaXM5ovjdAE3j"
    "YuAj4ck-0e"
)


def body_lines(pem: str) -> list[str]:
    """The lines of a PEM block that are secret: all but its markers and headers."""
    return [
        line
        for line in pem.splitlines()
        if line and not line.startswith("-----") and ":" not in line
    ]


# (log line, the parts of it that must not leave the agent)
SECRETS: list[tuple[str, list[str]]] = [
    # environment-style names with =, : and quotes (the _ before PASSWORD used to defeat \b)
    ("config: DB_PASSWORD=wOkeg9xvYWM7fv loaded from env", ["wOkeg9xvYWM7fv"]),
    ("POSTGRES_PASSWORD: sxW5vZXRpA^wmo", ["sxW5vZXRpA^wmo"]),
    ('MYSQL_ROOT_PASSWORD="RfoWRZ9IkZgGsT"', ["RfoWRZ9IkZgGsT"]),
    ("redis: requirepass REDIS_PASSWD='*#lOm6Y059Kh0F'", ["*#lOm6Y059Kh0F"]),
    ("MYSQL_PWD=gHE8HI2D3WRyOU mysql -h db -u app", ["gHE8HI2D3WRyOU"]),
    ("env: DJANGO_SECRET_KEY=KK5dlJip#8O2QX-w3ak9zzq", ["KK5dlJip#8O2QX-w3ak9zzq"]),
    (
        "starting with CLIENT_SECRET=DHjrwjzVZ^Z!n* ISSUER=https://id.example.com",
        ["DHjrwjzVZ^Z!n*"],
    ),
    ("settings: API_KEY=slZ#y1DDJAcvzg region=eu-west-1", ["slZ#y1DDJAcvzg"]),
    ("vault: VAULT_TOKEN=hvs.CAESIJ7mQ3x0xq9QYzoZKlIeFX2S", ["hvs.CAESIJ7mQ3x0xq9QYzoZKlIeFX2S"]),
    ("GOOGLE_APPLICATION_CREDENTIALS: hV9Idcqe!XO7kI.json", ["hV9Idcqe!XO7kI"]),
    ('{"level":"debug","msg":"config","password":"gHONxfqveH^uX*"}', ["gHONxfqveH^uX*"]),
    ('request body: {\\"apiKey\\":\\"CdkH3lSW88Gj!R\\"}', ["CdkH3lSW88Gj!R"]),
    ("spring.datasource.password=Vq3ndL0pzR7k", ["Vq3ndL0pzR7k"]),
    ("exec: pg_dump --password hunter2Xq9 --host db", ["hunter2Xq9"]),
    ("x-api-key: 3kd92Jd8slQm2aPq", ["3kd92Jd8slQm2aPq"]),
    ("session=h961uq1hsbqpt4levv3w2l1w4o6lp5fy user=42", ["h961uq1hsbqpt4levv3w2l1w4o6lp5fy"]),
    ("<password>Ls8d0Qm3xYt</password>", ["Ls8d0Qm3xYt"]),
    # Authorization headers, cookies
    (
        "GET /v1/orders Authorization: Bearer URI8R.fszQkQNuZMplXEL.6VcxlxWcXxk8S21w6h",
        ["URI8R.fszQkQNuZMplXEL.6VcxlxWcXxk8S21w6h"],
    ),
    (
        "proxy: Authorization: Basic ZGVwbG95OmlFUkI1TG1pWFAyYWRLVVA=",
        ["ZGVwbG95OmlFUkI1TG1pWFAyYWRLVVA="],
    ),
    (
        'headers={"authorization": "token 9f8e7d6c5b4a39281706f5e4d3c2b1a0"}',
        ["9f8e7d6c5b4a39281706f5e4d3c2b1a0"],
    ),
    ("curl -H 'Cookie: sid=Ab3dE9fG1hJ2kL4m; theme=dark' https://shop", ["Ab3dE9fG1hJ2kL4m"]),
    ("retrying with basic ZGVwbG95OmlFUkI1TG1pWFAyYWRLVVA=", ["ZGVwbG95OmlFUkI1TG1pWFAyYWRLVVA="]),
    # credentials in URLs of any scheme, and connection strings
    ("error: connect postgres://app:Zx81kfPq2@db:5432/app failed", ["Zx81kfPq2"]),
    ("amqp://guest:R4bb1tPassw0rd@rabbit:5672/ unreachable", ["R4bb1tPassw0rd"]),
    ("mongodb+srv://orders:Mng0P4ss!x9@cluster0.abcde.mongodb.net/prod", ["Mng0P4ss!x9"]),
    ("redis://:R3disS3cr3tQ@cache:6379/0 timed out", ["R3disS3cr3tQ"]),
    (
        "fetching https://deploy:gldt-Qw9eRt6yUi3oPa8sDf2g@git.example.com/app.git",
        ["gldt-Qw9eRt6yUi3oPa8sDf2g"],
    ),
    ("Server=db;Database=shop;User Id=sa;Password=Pa55w0rdMssql;", ["Pa55w0rdMssql"]),
    ("dsn: host=db user=app password=pGs3cr3tDsn dbname=app sslmode=disable", ["pGs3cr3tDsn"]),
    ("odbc: Driver={PostgreSQL};Uid=app;Pwd=Odbc5ecretX;", ["Odbc5ecretX"]),
    ("jdbc:mysql://db:3306/shop?user=app&password=JdbcS3cret9", ["JdbcS3cret9"]),
    # tokens with a known shape
    (
        "git: using token ghp_kASAOsE1nYEZ9GlGHpYaax7LBejYWo6oScBV",
        ["kASAOsE1nYEZ9GlGHpYaax7LBejYWo6oScBV"],
    ),
    (
        "oauth token gho_X4ANCc9vIFShP88xbjV0fhZ7bDkJUvzFjlQc issued",
        ["X4ANCc9vIFShP88xbjV0fhZ7bDkJUvzFjlQc"],
    ),
    (
        "GH_PAT 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",
        ["E30peXmnRZ5QW8W5LUehJE_J0ymv7j4IAsx9CGyuFyrb1fkTTFaFeJMVHoKMuJNhlQkOw17vwWM7tpgke7"],
    ),
    ("gitlab: glpat-w2VueE0ubS-WFFui409h rejected", ["w2VueE0ubS-WFFui409h"]),
    ("runner registered glrt-1sd2qQscApkze3vP5jjV", ["1sd2qQscApkze3vP5jjV"]),
    (
        "slack: posting with xoxb-70428703525-9679742894206-Ri9TbqLuPp29LAqRzW9Z5iij",
        ["70428703525-9679742894206-Ri9TbqLuPp29LAqRzW9Z5iij"],
    ),
    (
        "slack user token xoxp-16120721142-485673922263-8098006716923-8a17c499f31a9962a6b2ad322e0efcc2",
        ["8a17c499f31a9962a6b2ad322e0efcc2"],
    ),
    (
        "socket mode xapp-1-AOBD1CPRZ13-3665731072759-6e87ffc9c05a69c42529ce35d6ab6820a84678c5cecde85c83661bb021cee704",
        ["6e87ffc9c05a69c42529ce35d6ab6820a84678c5cecde85c83661bb021cee704"],
    ),
    (
        "webhook https://hooks.slack.com/services/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 500",
        ["oKZ01L7D4YbQLefB51VWQmjd"],
    ),
    (
        "discord https://discord.com/api/webhooks/614541353987527414/x3t31cJIyXX4uDl45U6pMpIAymiDaRf7mQpBM4aT6q3dF7z4rJArFrtMVxX-dpF0k5nT",
        ["x3t31cJIyXX4uDl45U6pMpIAymiDaRf7mQpBM4aT6q3dF7z4rJArFrtMVxX-dpF0k5nT"],
    ),
    (
        "stripe: charge failed with key sk_live_F0HMINFERZRvjrjwstOOa4Ze",
        ["F0HMINFERZRvjrjwstOOa4Ze"],
    ),
    ("stripe restricted rk_live_QelGgR1mxrwdkcLFrRYPzkcg", ["QelGgR1mxrwdkcLFrRYPzkcg"]),
    (
        "verifying signature with whsec_o7wIqAmSmU9HBfu0onGcUwMIOOPlbTxF",
        ["o7wIqAmSmU9HBfu0onGcUwMIOOPlbTxF"],
    ),
    (
        "maps: https://maps.googleapis.com/maps/api/geocode/json?address=x&k=AIza9u4cJhBoNXA7UbTwHdWux0ACK5UkEZwTUqd",
        ["9u4cJhBoNXA7UbTwHdWux0ACK5UkEZwTUqd"],
    ),
    ("oauth client 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", ["2dAnBVLpuE27_yBGx3WC-9Hf6AeR"]),
    (
        "access ya29.4MrCuWsYeaL6z-D9hdVq_Q7TX5jGnVG6pzQjNFqsHnLBAr__BeQVbysKhH0h",
        ["4MrCuWsYeaL6z-D9hdVq_Q7TX5jGnVG6pzQjNFqsHnLBAr__BeQVbysKhH0h"],
    ),
    (
        "openai: 401 for sk-hW4MPGbUoMTCFGI9JxBObO8xjwzWCOPDUGLoCYob2P5D1oXL",
        ["hW4MPGbUoMTCFGI9JxBObO8xjwzWCOPDUGLoCYob2P5D1oXL"],
    ),
    (
        "llm key sk-proj-lS-tvbIPQMBg6xztbutCovoZppAAckFCmFA3bZMOT3BlbkFJT1e_fZ9xekG8HuLRV-HXLgoKl-PrtNNXoI4DgV2n",
        [
            "lS-tvbIPQMBg6xztbutCovoZppAAckFCmFA3bZMOT3BlbkFJT1e_fZ9xekG8HuLRV-HXLgoKl-PrtNNXoI4DgV2n"
        ],
    ),
    (
        "anthropic sk-ant-api03-8BUzf_MQ3xc2zueBBvRbD5FTWyJxV9sQVsKkhFMPWvYdIIBDpdAWy_Bv3WLqXgralv6o8gjPowL5L0YoJSa0G7OHSrSTAAA",
        [
            "8BUzf_MQ3xc2zueBBvRbD5FTWyJxV9sQVsKkhFMPWvYdIIBDpdAWy_Bv3WLqXgralv6o8gjPowL5L0YoJSa0G7OHSrSTAAA"
        ],
    ),
    (
        "npm publish with npm_Ok0frYYka9vckYwSnGbcZbluKRJo2i2uNTkM",
        ["Ok0frYYka9vckYwSnGbcZbluKRJo2i2uNTkM"],
    ),
    ("huggingface hf_Wmgl7UtAqunUzyYY2sV7Ucptuot0BX3m9f", ["Wmgl7UtAqunUzyYY2sV7Ucptuot0BX3m9f"]),
    (
        "sendgrid 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",
        ["SqzNmMw0TYiH51Nf3CgqN9.6jLSXleNC9H2mVbtR3csNSp4YnsShzsxq65pH5useUj"],
    ),
    (
        "doctl auth dop_v1_5be7f53b11c0405989a478ac0b0deb393aa1ee9c722700421fe9cdcd543627fb",
        ["5be7f53b11c0405989a478ac0b0deb393aa1ee9c722700421fe9cdcd543627fb"],
    ),
    (
        "twine upload with pypi-AgEIcHlwaS5vcmcFCkej1CWYcFP2qti63Dbtno-5lk_g5aIvoCsmMM8DEia3K-86B",
        ["AgEIcHlwaS5vcmcFCkej1CWYcFP2qti63Dbtno-5lk_g5aIvoCsmMM8DEia3K-86B"],
    ),
    # JWTs
    (f"auth: rejected token {JWT} (expired)", [JWT]),
    # AWS
    ("aws: AWS_ACCESS_KEY_ID=AKIA33LL2DY5F95K9HAB", ["AKIA33LL2DY5F95K9HAB"]),
    (
        "aws: AWS_SECRET_ACCESS_KEY=Misu0OHTYoVgkzE6R8LE8JyOO91DHAwvmxH92IFG",
        ["Misu0OHTYoVgkzE6R8LE8JyOO91DHAwvmxH92IFG"],
    ),
    (
        "assumed role ASIAT7JAE2F0XZ25QLTO loLiAvbE31YHx3ybLW1zHY+KDhUGVR2hHuDxnQCv",
        ["ASIAT7JAE2F0XZ25QLTO", "loLiAvbE31YHx3ybLW1zHY+KDhUGVR2hHuDxnQCv"],
    ),
    (
        "aws_secret_access_key = J8ia2PkQm5Zr/7nWb3Xy9Lc1Vd4Ts6Ue0Hf2Gg8K",
        ["J8ia2PkQm5Zr/7nWb3Xy9Lc1Vd4Ts6Ue0Hf2Gg8K"],
    ),
    # high-entropy values after secret-looking names
    (
        "signing request with hmac=4f9a2c7e1b8d3a6f0e5c9b2a7d4f1e8c",
        ["4f9a2c7e1b8d3a6f0e5c9b2a7d4f1e8c"],
    ),
    ("cache_key=Qm9aT3xK7pL2wR8vZ5nY user=7", ["Qm9aT3xK7pL2wR8vZ5nY"]),
    ("X-Signature: sha256=a2f3c5e7d9b1a3c5e7f9d1b3a5c7e9f1", ["a2f3c5e7d9b1a3c5e7f9d1b3a5c7e9f1"]),
]
# whole private keys, one block of lines each
KEYS: list[str] = [EC_KEY, OPENSSH_KEY, PKCS8_KEY, ENCRYPTED_RSA_KEY]

NEAR_MISSES: list[str] = [
    "password_policy=strict",
    "token_count=12",
    "max_tokens=2000 tokens_used=1532",
    "password authentication failed for user app",
    'FATAL: password authentication failed for user "orders"',
    "invalid password for user bob (attempt 3 of 5)",
    "passwordless login enabled for admins",
    "PWD=/srv/app OLDPWD=/srv",
    "monkey=banana keyboard=us tokenizer=bpe",
    "secretary=alice secret_name=db-creds SECRET_NAME=orders-db",
    "TOKEN_TTL=3600 session_timeout=30m",
    "routing_key=orders.created sort_key=created_at primary_key=id",
    "cache_key=user:42 key=user:42 key_count=5 keys=3",
    "api key rotation scheduled for 2025-07-01",
    "key not found in cache: user:42",
    "Authorization header missing on /v1/orders",
    "Bearer authentication required for /admin",
    "Basic configuration loaded from /etc/app/config.yaml",
    "http://example.com:8080/path?page=2",
    "https://user@git.example.com/org/repo.git",
    "connected to postgres://db:5432/app as app",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b deployed",
    "image sha256:7a605fc500f82458147f66bfa144b9d89bcb65a1878d7aa4011e5fde4dd741af pulled",
    "request_id=550e8400-e29b-41d4-a716-446655440000 status=200",
    "GET /api/v1/Orders/12345/LineItems/67890/Details 200 12ms",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "sklearn model loaded; sk-learn 1.4 ok",
    "task-runner-3 started; risk-assessment-v2 done",
    "xoxo from the team",
    "PASS: TestCheckout (0.02s)",
    "POSTGRES_USER=app POSTGRES_DB=app POSTGRES_HOST=db",
    "client_id=web-frontend grant_type=client_credentials",
    "expires_at=2025-01-01T00:00:00Z duration=1.5s",
    "author=bob authority=ca-1",
    "pk=42 id=7 sid_version=2",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "goroutine 41 [running]: main.(*OrderHandler).ServeHTTP(0x0, {0x8a3f20, 0xc0001a2000})",
    "warn: request queue depth 950 exceeds 500; p99 latency 2300ms",
    "this_is_a_very_long_identifier_name_with_digits_2_and_Caps_Final",
    "AbstractSingletonProxyFactoryBeanConfiguration loaded",
    "dsn_name=primary ssl=true",
]
