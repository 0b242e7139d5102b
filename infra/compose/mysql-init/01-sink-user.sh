#!/bin/bash
# The sink's least-privilege account: DML on the read model only. Migrations run as root.
set -euo pipefail
mysql -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE USER IF NOT EXISTS 'cqrs_sink'@'%' IDENTIFIED BY '${MYSQL_SINK_PASSWORD}';
GRANT SELECT, INSERT, UPDATE, DELETE ON cqrs_read.* TO 'cqrs_sink'@'%';
SQL
