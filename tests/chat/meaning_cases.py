# ruff: noqa: E501
"""Questions of the meaning eval: people asking about stored memories in their own words.

Each case is (category, memory, question); memory ``None``: nothing stored answers the question
(it shares words or a near identifier with stored memories), the answerer must say it does not
know. Those were added after the others, written the same way before the eval was run on them. The memories are the retrieval eval's
(tests/chat/test_retrieval_eval.py). The questions were written the way people type in chat,
before the analyzer was run on them, and are for measuring only: no glossary entry, rule or
weight in mchat_actors may be written or changed to make one of them pass.

Categories:
- ``paraphrase``: other words for the same thing (synonyms, jargon, a loanword for a Korean word);
- ``endings``: the memory's words with other endings, politeness and colloquial forms;
- ``typos``: misspelt words (a jamo dropped, doubled or next on the keyboard; English too);
- ``cross-language``: a Korean memory asked in English, or the other way round.
"""

from __future__ import annotations

CASES: list[tuple[str, str | None, str]] = [
    # paraphrase and synonyms
    ("paraphrase", "X부품 불량률 12%", "X부품 결함률 어느 정도야?"),
    ("paraphrase", "다음 배포는 5월 17일 금요일 오후 3시", "다음 릴리스 언제 나가?"),
    ("paraphrase", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "품질 미팅 언제 어디서 해?"),
    ("paraphrase", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨", "Acme 하우징 납품일 밀렸어?"),
    ("paraphrase", "Z모듈 초도품 검사(FAI)는 QA팀 박지민 담당", "FAI 누가 맡고 있어?"),
    ("paraphrase", "고객사 B전자 클레임: 커넥터 핀 휨 불량 20건", "B전자에서 들어온 불만 건 뭐였지?"),
    ("paraphrase", "출하 검사 샘플링은 AQL 0.65 기준", "출고 검사 샘플링 기준 알려줘"),
    ("paraphrase", "금형 2호기 세척 주기는 5000샷마다", "2호기 금형 청소는 얼마마다 해?"),
    ("paraphrase", "사출 성형 온도 조건은 230도로 변경", "사출 온도 설정 바뀐 거 있어?"),
    ("paraphrase", "협력사 대한정밀 감사 결과 B등급", "대한정밀 심사 결과 어떻게 나왔어?"),
    ("paraphrase", "3D 측정기 교정 만료일은 9월 1일", "3D 측정기 캘리브레이션 언제 끝나?"),
    ("paraphrase", "품질팀 회식은 금요일 저녁 7시 강남역", "품질팀 저녁 모임 장소 어디야?"),
    ("paraphrase", "고객 반품률 목표는 0.3% 이하", "고객 리턴율 목표치가 얼마지?"),
    ("paraphrase", "PCB 공급사 Sunrise 리드타임 6주", "Sunrise PCB 조달기간 얼마나 걸려?"),
    ("paraphrase", "회의록은 Confluence 품질 스페이스에 올림", "미팅 노트 어디에 올려?"),
    ("paraphrase", "배터리 셀 공급사는 LG에서 삼성SDI로 변경 예정", "배터리 셀 벤더 바뀐대?"),
    # endings and politeness
    ("endings", "X부품 불량률 12%", "X부품 불량률이 어떻게 되나요?"),
    ("endings", "다음 배포는 5월 17일 금요일 오후 3시", "다음 배포가 언제인지 알려주실 수 있을까요?"),
    ("endings", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "품질 회의는 몇 시에 하는 거였죠?"),
    ("endings", "8D 보고서 제출 기한은 4월 30일", "8D 보고서 제출 기한이 언제까지였더라"),
    ("endings", "금형 2호기 세척 주기는 5000샷마다", "금형 세척 주기 좀 알려주세요~"),
    ("endings", "ISO 9001 사후심사는 7월 둘째 주", "ISO 사후심사 일정 확인 부탁드립니다"),
    ("endings", "협력사 대한정밀 감사 결과 B등급", "대한정밀 감사 결과가 궁금합니다"),
    ("endings", "라인 2 가동률 지난주 87%", "라인 2 가동률 얼마였는지 기억나세요?"),
    ("endings", "소음 테스트 기준은 45dB 이하", "소음 테스트 기준이 어떻게 됐었지?"),
    ("endings", "낙하 테스트 1.5m 조건에서 3개 중 1개 파손", "낙하 테스트는 어떻게 됐대요?"),
    ("endings", "품질팀 회식은 금요일 저녁 7시 강남역", "회식 장소가 어디였는지 여쭤봐도 될까요?"),
    ("endings", "고객 반품률 목표는 0.3% 이하", "반품률 목표치 아시는 분?"),
    ("endings", "다음 고객 방문은 Hooli 6월 20일", "Hooli 방문 날짜 나왔나요?"),
    ("endings", "신규 부품 K-220 PPAP 승인 완료", "K-220 PPAP는 승인 났습니까?"),
    ("endings", "외관 검사 기준서 개정판 v3.2 배포됨", "외관 검사 기준서 개정됐다던데 맞나요?"),
    # typos
    ("typos", "X부품 불량률 12%", "X부품 불랑률 몇이야"),
    ("typos", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실", "주간 품질 회이 몇시야"),
    ("typos", "다음 배포는 5월 17일 금요일 오후 3시", "배포 일졍 알려줘"),
    ("typos", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨", "Acme 납끼 언제로 바뀌었어?"),
    ("typos", "Z모듈 초도품 검사(FAI)는 QA팀 박지민 담당", "초도품 검사 담댱자 누구야"),
    ("typos", "신뢰성 테스트(고온고습 85℃/85%) 1000시간 통과", "고온고습 테스트 결과눈?"),
    ("typos", "금형 2호기 세척 주기는 5000샷마다", "금형 세척 주귀 얼마야"),
    ("typos", "사출 성형 온도 조건은 230도로 변경", "사출 온도 몇 도로 바꿧지?"),
    ("typos", "협력사 대한정밀 감사 결과 B등급", "대한정밀 감사 등급믄?"),
    ("typos", "3D 측정기 교정 만료일은 9월 1일", "3D 측정기 교정 언제 만뇨돼?"),
    ("typos", "고객 반품률 목표는 0.3% 이하", "반품율 목표가 몇 %야?"),
    ("typos", "배터리 셀 공급사는 LG에서 삼성SDI로 변경 예정", "배터리 공급샤 바뀌어?"),
    ("typos", "Defect rate for the M3 screws was 0.8% last month",
     "What was the deffect rate of the M3 screws?"),
    ("typos", "Customer audit by Globex is scheduled for August 12", "When is the Globex adit?"),
    ("typos", "PCB 공급사 Sunrise 리드타임 6주", "Sunrise 리드타암 얼마야"),
    # cross-language
    ("cross-language", "X부품 불량률 12%", "What's the defect rate of part X?"),
    ("cross-language", "다음 배포는 5월 17일 금요일 오후 3시", "When is the next deployment?"),
    ("cross-language", "주간 품질 회의는 매주 월요일 오전 10시 3층 대회의실",
     "When is the weekly quality meeting?"),
    ("cross-language", "공급사 Acme의 하우징 납기가 6월 2일로 연기됨",
     "What's the due date for the Acme housings?"),
    ("cross-language", "금형 2호기 세척 주기는 5000샷마다", "How often is mold 2 cleaned?"),
    ("cross-language", "고객 반품률 목표는 0.3% 이하", "What's our customer return rate target?"),
    ("cross-language", "PCB 공급사 Sunrise 리드타임 6주", "What's the lead time for Sunrise PCBs?"),
    ("cross-language", "Yield on line 3 improved to 98.2% after the fixture change",
     "라인 3 수율 얼마야?"),
    ("cross-language", "Weekly quality review meeting is Tuesday at 2 pm in room B",
     "품질 리뷰 회의 언제야?"),
    ("cross-language", "Calibration of the CMM is overdue since March", "CMM 교정 기한 지났어?"),
    ("cross-language", "Customer audit by Globex is scheduled for August 12",
     "Globex 고객 심사 언제야?"),
    ("cross-language", "Torque spec for the cover bolts is 2.5 Nm", "커버 볼트 토크 사양이 뭐야?"),
    ("cross-language", "Defect rate for the M3 screws was 0.8% last month",
     "M3 나사 불량률 얼마였어?"),
    ("cross-language", "Salt spray test passed 96 hours without corrosion",
     "염수분무 시험 통과했어?"),
    ("cross-language", "Initech quoted $1.20 per unit for the brackets",
     "Initech 브래킷 단가 얼마래?"),
    # nothing stored answers these
    ("paraphrase", None, "금형 3호기 청소 주기는 얼마마다야?"),
    ("paraphrase", None, "대한정밀 납품 지연 몇 번 있었어?"),
    ("paraphrase", None, "다음 릴리스 노트는 누가 써?"),
    ("endings", None, "Z모듈 양산 일정이 어떻게 되나요?"),
    ("endings", None, "라인 5 가동률 얼마였는지 기억나세요?"),
    ("endings", None, "K-330 PPAP는 승인 났습니까?"),
    ("typos", None, "라인 4 가동율 몇이얌"),
    ("typos", None, "회식비 정싼 언제까지야?"),
    ("typos", None, "What's the yeild on line 5?"),
    ("cross-language", None, "What's the defect rate of part W?"),
    ("cross-language", None, "Initech 브래킷 납기 언제야?"),
    ("cross-language", None, "When is the next ISO 14001 audit?"),
]

CATEGORIES = ("paraphrase", "endings", "typos", "cross-language")
