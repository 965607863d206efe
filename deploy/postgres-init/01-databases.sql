-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
-- One database per service; the services' DATABASE_URLs in docker-compose.yml name these.
CREATE DATABASE enrollment OWNER huzhu;
CREATE DATABASE claims OWNER huzhu;
CREATE DATABASE payments OWNER huzhu;
CREATE DATABASE notifications OWNER huzhu;
