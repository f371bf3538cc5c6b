# The fuzz targets: each name <t> is tests/fuzz/fuzz_<t>.cpp, seeded by corpus/<t>/, with
# regressions/<t>/ and, where it helps, dict/<t>.dict. Shared by tests/fuzz/CMakeLists.txt (the
# replay executables, any compiler) and tests/fuzz/libfuzzer/ (the clang libFuzzer sub-build).
#
# FABRIC_FUZZ_TARGETS: the targets.
# FABRIC_FUZZ_SOURCES_<t>: the fabric sources the libFuzzer sub-build compiles for <t>, relative
# to the source root (the replay build links fabric_testing and needs no list).
set(FABRIC_FUZZ_TARGETS
  envelope     # FAB1 envelope and header (src/core/envelope.cpp)
  codec        # bounded msgpack decoding and typed payloads (src/core/codec.cpp)
  mdp          # 7/MDP client and worker frames (src/reliability/mdp.cpp)
  mdp_broker   # the Majordomo broker machine fed decoded messages on a fake clock
  ppp          # 6/PPP frames and the Paranoid Pirate queue machine
  flp          # 10/FLP frames, the Freelance client and server machines on a fake clock
  tsp          # 9/TSP bodies (src/reliability/tsp.cpp)
  tsp_server   # the Titanic server machine, on a fake clock, journal and broker
  ftr          # FTR/1 Titanic replication frames and log entries (src/reliability/ftr.cpp)
  frc          # FRC/1 reliable channel commands (src/reliability/frc.cpp)
  frc_receiver # the FRC/1 receiver machine and its journal records, on a fake clock and journal
  frs          # FRS/1 stream commands (src/reliability/frs.cpp)
  frs_subscriber # the FRS/1 subscriber machine, on a fake clock
  frq          # FRQ/1 work queue commands (src/reliability/frq.cpp)
  record       # journal records (src/journal/record.cpp)
  data_file    # LMDB's data file read from outside LMDB (src/journal/data_file.cpp)
  curve_cert   # CURVE certificates, ZPL text (src/core/certificate.cpp)
)

set(fabric_fuzz_core src/core/error.cpp src/core/message.cpp)
set(FABRIC_FUZZ_SOURCES_envelope ${fabric_fuzz_core} src/core/codec.cpp src/core/envelope.cpp
  src/core/message_id.cpp)
set(FABRIC_FUZZ_SOURCES_codec ${fabric_fuzz_core} src/core/codec.cpp)
set(FABRIC_FUZZ_SOURCES_mdp ${fabric_fuzz_core} src/reliability/mdp.cpp)
set(FABRIC_FUZZ_SOURCES_mdp_broker ${fabric_fuzz_core} src/reliability/mdp.cpp
  src/reliability/mdp_broker_machine.cpp src/reliability/mdp_broker_books.cpp)
set(FABRIC_FUZZ_SOURCES_ppp ${fabric_fuzz_core} src/reliability/ppp.cpp)
set(FABRIC_FUZZ_SOURCES_flp ${fabric_fuzz_core} src/reliability/flp.cpp src/reliability/flp_client.cpp
  src/reliability/flp_server.cpp src/reliability/flp_faults.cpp)
set(FABRIC_FUZZ_SOURCES_tsp ${fabric_fuzz_core} src/reliability/tsp.cpp)
set(FABRIC_FUZZ_SOURCES_ftr ${fabric_fuzz_core} src/reliability/ftr.cpp)
set(FABRIC_FUZZ_SOURCES_tsp_server ${fabric_fuzz_core} src/reliability/tsp.cpp
  src/reliability/tsp_server.cpp src/reliability/tsp_faults.cpp)
set(FABRIC_FUZZ_SOURCES_frc ${fabric_fuzz_core} src/reliability/frc.cpp)
set(FABRIC_FUZZ_SOURCES_frc_receiver ${fabric_fuzz_core} src/reliability/frc.cpp
  src/reliability/frc_receiver.cpp)
set(FABRIC_FUZZ_SOURCES_frs ${fabric_fuzz_core} src/reliability/frs.cpp)
set(FABRIC_FUZZ_SOURCES_frs_subscriber ${fabric_fuzz_core} src/reliability/frs.cpp
  src/reliability/frs_subscriber.cpp)
set(FABRIC_FUZZ_SOURCES_frq ${fabric_fuzz_core} src/reliability/frq.cpp)
set(FABRIC_FUZZ_SOURCES_record src/journal/record.cpp)
set(FABRIC_FUZZ_SOURCES_curve_cert ${fabric_fuzz_core} src/core/security.cpp src/core/certificate.cpp)
set(FABRIC_FUZZ_SOURCES_data_file src/core/error.cpp src/journal/data_file.cpp)
