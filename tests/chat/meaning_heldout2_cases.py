# ruff: noqa: E501
"""The meaning eval's second held-out set: questions written blind, to measure a later change.

Written on 2026-11-30 (session 7) by a helper for issue #9, after the first held-out set
(tests/chat/meaning_heldout_cases.py) had been run and its floors set, so that a later change to
retrieval can be measured on questions nobody has tuned against. The writer did not read the
analyzer, the glossary, the similarity or the answerer (mchat_actors/chat/), docs/retrieval.md,
the meaning eval's cases, the development set, the first held-out set (beyond its docstring and
first five cases, for the format) or any eval output; only the stored memories and distractors
(tests/chat/test_retrieval_eval.py) and how a set is measured (tests/chat/meaning_measure.py,
tests/chat/test_meaning_heldout.py). This file was committed on its own, before the test that
measures it (tests/chat/test_meaning_heldout2.py) was written or anything was run on it, and is
not edited after that test's first run. It must never be tuned against: no glossary entry, rule
or weight in mchat_actors may be written or changed to make one of these questions pass
(changes are studied on the development set, tests/chat/test_meaning_dev.py).

Each case is (category, memory, question), as in the meaning eval; memory ``None``: nothing
stored answers the question (a neighbouring topic or a near identifier: another part, line,
mould, lot or version), the answerer must say it does not know. The memories are the retrieval
eval's (tests/chat/test_retrieval_eval.py). The questions are written the way a Korean
manufacturing quality team types in chat: 반말 and 존댓말, chat shorthand (ㅇㅇ, ~임?, 몇이더라),
question marks often missing, English terms inside Korean sentences, some English.

Categories:
- ``paraphrase``: other words for the same thing (synonyms, jargon, loanwords vs native words,
  Konglish, English terms in Korean sentences, a description instead of the term);
- ``endings``: the memory's words with other endings, politeness and colloquial forms;
- ``typos``: misspelt words (a jamo swapped, dropped or next on the keyboard; English too);
- ``cross-language``: a Korean memory asked in English, or the other way round.
"""

from __future__ import annotations

CASES: list[tuple[str, str | None, str]] = [
    # paraphrase: other words, jargon, loanwords, Konglish, descriptions
    ("paraphrase", "X부품 불량률 12%", "X부품 하자 비율 요즘 몇 프로 나옴"),
    ("paraphrase", "Y부품 불량률은 3.5%로 안정적", "Y부품 결함률 추이 괜찮은 편이야?"),
    ("paraphrase", "다음 배포는 5월 17일 금요일 오후 3시", "다음 릴리즈 언제 나가요?"),
    ("paraphrase", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "매주 하는 퀄리티 미팅 장소가 어디였지"),
    ("paraphrase", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨", "Acme 케이스 입고 늦어진다던데 언제 들어와"),
    ("paraphrase", "신뢰성 테스트(고온고습 85℃/85%) 1000시간 통과", "85도 85프로 습도 가혹 시험 패스했나요?"),
    ("paraphrase", "낙하 테스트 1.5m 조건에서 3개 중 1개 파손", "떨어뜨려 보는 시험에서 깨진 샘플 몇 개였어"),
    ("paraphrase", "Z모듈 초도품 검사(FAI)는 QA팀 박지민 담당", "Z모듈 first article inspection 누가 맡고 있어?"),
    ("paraphrase", "고객사 B전자 클레임: 커넥터 핀 휨 불량 20건", "B전자에서 들어온 컴플레인 무슨 건이었어"),
    ("paraphrase", "8D 보고서 제출 기한은 4월 30일", "8D 고객 회신 데드라인 며칠임?"),
    ("paraphrase", "SPC 관리도에서 치수 A가 UCL 초과, 공정 점검 필요", "관리 차트 상한선 벗어난 치수 뭐였음?"),
    ("paraphrase", "출하 검사 샘플링은 AQL 0.65 기준", "출고 전 검사 합격품질수준 얼마로 잡았어"),
    ("paraphrase", "금형 2호기 세척 주기는 5000샷마다", "ㅇㅇ 근데 2호기 몰드 클리닝은 몇 shot마다 함"),
    ("paraphrase", "사출 성형 온도 조건은 230도로 변경", "인젝션 온도 세팅 바뀐 거 몇 도임?"),
    ("paraphrase", "ISO 9001 사후심사는 7월 둘째 주", "9001 유지심사 일정 잡혔어?"),
    ("paraphrase", "협력사 대한정밀 감사 결과 B등급", "대한정밀 오딧 받은 거 몇 등급 나왔어"),
    ("paraphrase", "불량 분석 결과 원인은 도금 두께 부족", "그 불량 건 RCA 결론 뭐였더라"),
    ("paraphrase", "3D 측정기 교정 만료일은 9월 1일", "3차원 측정기 검교정 유효기간 언제까지예요?"),
    ("paraphrase", "라인 2 가동률 지난주 87%", "2번 라인 지난주에 설비 돌아간 비율 몇 %야"),
    ("paraphrase", "신규 부품 K-220 PPAP 승인 완료", "K-220 양산 부품 승인 떨어졌어?"),
    ("paraphrase", "품질팀 회식은 금요일 저녁 7시 강남역", "우리 팀 저녁 모임 장소 어디로 잡혔어"),
    ("paraphrase", "고객 반품률 목표는 0.3% 이하", "고객 리턴율 타겟 얼마로 잡혀 있어요"),
    ("paraphrase", "배터리 셀 공급사는 LG에서 삼성SDI로 변경 예정", "배터리 셀 벤더 어디로 갈아탄다고?"),
    ("paraphrase", "소음 테스트 기준은 45dB 이하", "소음 스펙 몇 데시벨까지 허용돼"),
    ("paraphrase", "외관 검사 기준서 개정판 v3.2 배포됨", "외관 검사 표준서 새 리비전 몇이야"),
    ("paraphrase", "Torque spec for the cover bolts is 2.5 Nm", "How tight do the cover bolts need to be?"),
    ("paraphrase", "Salt spray test passed 96 hours without corrosion", "Did the salt fog corrosion check go OK?"),
    ("paraphrase", "Root cause of the cracked housings was resin moisture; dryer time raised to 4 hours", "what was behind the housing fractures"),
    ("paraphrase", "Initech quoted $1.20 per unit for the brackets", "What price per piece did Initech offer on brackets?"),
    ("paraphrase", "PCB 공급사 Sunrise 리드타임 6주", "Sunrise PCB 발주하면 받기까지 몇 주 걸려?"),
    ("paraphrase", "QA팀 standup은 매일 9시 30분 Zoom", "QA팀 아침 데일리 스크럼 몇 시에 해"),
    ("paraphrase", "C부품 치수 불량 재발 방지 대책: 지그 교체", "C부품 사이즈 불량 다시 안 나게 하려고 뭐 바꿨어?"),
    ("paraphrase", "회의록은 Confluence 품질 스페이스에 올림", "미팅 minutes 어디 올라가 있어요?"),
    ("paraphrase", None, "W부품 하자 비율 몇 프로야"),
    ("paraphrase", None, "1호기 몰드 클리닝 주기 얼마임?"),
    ("paraphrase", None, "K-330 양산 부품 승인 났어?"),
    ("paraphrase", None, "Sunrise PCB 개당 단가 얼마로 확정됐어"),
    ("paraphrase", None, "3차원 측정기 어느 방에 있어요?"),
    # endings: the memory's words, other endings and politeness, colloquial forms
    ("endings", "X부품 불량률 12%", "X부품 불량률이 몇 프로였더라"),
    ("endings", "다음 배포는 5월 17일 금요일 오후 3시", "다음 배포 언제로 잡혔었죠?"),
    ("endings", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "주간 품질 회의 몇 시부터였나요"),
    ("endings", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨", "Acme 하우징 납기 연기됐다면서요 언제로요?"),
    ("endings", "낙하 테스트 1.5m 조건에서 3개 중 1개 파손", "낙하 테스트 파손 몇 개였음?"),
    ("endings", "출하 검사 샘플링은 AQL 0.65 기준", "출하 검사 샘플링 기준 좀 알려주시겠어요"),
    ("endings", "금형 2호기 세척 주기는 5000샷마다", "금형 2호기 세척 몇 샷마다였더라"),
    ("endings", "ISO 9001 사후심사는 7월 둘째 주", "ISO 9001 사후심사 언제 하던가요"),
    ("endings", "협력사 대한정밀 감사 결과 B등급", "대한정밀 감사 등급 나왔나요"),
    ("endings", "3D 측정기 교정 만료일은 9월 1일", "3D 측정기 교정 언제 만료되는 거였지"),
    ("endings", "라인 2 가동률 지난주 87%", "라인 2 가동률 지난주 몇이었냐"),
    ("endings", "품질팀 회식은 금요일 저녁 7시 강남역", "품질팀 회식 몇 시에 모이는 거임?"),
    ("endings", "고객 반품률 목표는 0.3% 이하", "고객 반품률 목표 몇 이하였죠"),
    ("endings", "ESD 테스트 8kV 접촉방전 통과", "ESD 테스트 통과했나여"),
    ("endings", "다음 고객 방문은 Hooli 6월 20일", "다음 고객 방문 날짜 아시는 분 계실까요"),
    ("endings", None, "개발팀 회식은 언제였더라"),
    ("endings", None, "라인 4 가동률 지난주 몇이었어요?"),
    ("endings", None, "8D 보고서 누가 쓰는 거였죠"),
    # typos: a jamo swapped, dropped or next on the keyboard; English misspellings
    ("typos", "X부품 불량률 12%", "X부품 불랑률 몇프로야"),
    ("typos", "Y부품 불량률은 3.5%로 안정적", "Y부품 뷸량률 어때"),
    ("typos", "다음 배포는 5월 17일 금요일 오후 3시", "다움 배포 언제임"),
    ("typos", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "품질 회으 몇시에 하지"),
    ("typos", "신뢰성 테스트(고온고습 85℃/85%) 1000시간 통과", "고온고슴 테스트 결과 나왔어?"),
    ("typos", "Z모듈 초도품 검사(FAI)는 QA팀 박지민 담당", "초도퓸 검사 담당 누구"),
    ("typos", "고객사 B전자 클레임: 커넥터 핀 휨 불량 20건", "B전자 클래임 몇 건이었어"),
    ("typos", "SPC 관리도에서 치수 A가 UCL 초과, 공정 점검 필요", "관리도 UCL 초관된 항목 뭐야"),
    ("typos", "사출 성형 온도 조건은 230도로 변경", "사출 온또 몇 도로 바꿨어"),
    ("typos", "불량 분석 결과 원인은 도금 두께 부족", "불량 원잉 뭐였어"),
    ("typos", "신규 부품 K-220 PPAP 승인 완료", "K-220 PAPP 승인 났어?"),
    ("typos", "소음 테스트 기준은 45dB 이하", "소믐 테스트 기준 몇 dB"),
    ("typos", "Defect rate for the M3 screws was 0.8% last month", "what was the defcet rate for M3 scerws"),
    ("typos", "Calibration of the CMM is overdue since March", "Is the CMM calibraton overdue?"),
    ("typos", "The vibration test runs 3 axes for 2 hours each", "How long does the vibraiton test take"),
    ("typos", "EOL 테스트 소프트웨어 v1.7 배포 완료", "EOL 테스트 소프트웨어 버젼 몇이야"),
    ("typos", None, "Z모듈 초도품 검사 불헙격 몇 개 나왔어"),
    ("typos", None, "Globex aduit findings?"),
    ("typos", None, "금형 2호기 수리 겸적 나왔어?"),
    # cross-language: a Korean memory asked in English, an English memory asked in Korean
    ("cross-language", "X부품 불량률 12%", "part X reject rate?"),
    ("cross-language", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨", "When will Acme deliver the housings now"),
    ("cross-language", "8D 보고서 제출 기한은 4월 30일", "When is the 8D report due?"),
    ("cross-language", "금형 2호기 세척 주기는 5000샷마다", "How often do we clean mold #2?"),
    ("cross-language", "품질팀 회식은 금요일 저녁 7시 강남역", "where's the quality team dinner"),
    ("cross-language", "배터리 셀 공급사는 LG에서 삼성SDI로 변경 예정", "Are we switching battery cell suppliers?"),
    ("cross-language", "Q2 품질 KPI: 공정 불량률 500ppm 이하", "What's the Q2 process defect target in ppm?"),
    ("cross-language", "Supplier Acme ships housings from the Penang plant", "Acme 하우징 어느 공장에서 보내?"),
    ("cross-language", "Weekly quality review meeting is Tuesday at 2 pm in room B", "품질 리뷰 회의 무슨 요일에 해"),
    ("cross-language", "Customer audit by Globex is scheduled for August 12", "Globex 고객 감사 날짜 언제야?"),
    ("cross-language", "Initech quoted $1.20 per unit for the brackets", "Initech 브래킷 단가 얼마 불렀어"),
    ("cross-language", "Owner of the corrective action for lot 4471 is Dana", "4471 로트 시정조치 담당 누구야?"),
    ("cross-language", "Incoming inspection rejected 2 reels of capacitors from Umbrella Corp", "수입검사에서 Umbrella 콘덴서 몇 릴 불합격 났어"),
    ("cross-language", "Yield on line 3 improved to 98.2% after the fixture change", "3라인 수율 얼마까지 올랐어?"),
    ("cross-language", "Deployment of the MES update is postponed to next Monday", "MES 업데이트 배포 언제로 미뤄졌어요"),
    ("cross-language", None, "What's the defect rate for the M5 screws?"),
    ("cross-language", None, "Initech 하우징 견적 얼마야"),
    ("cross-language", None, "When is firmware 2.5 going out?"),
]

CATEGORIES = ("paraphrase", "endings", "typos", "cross-language")
