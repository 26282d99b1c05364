#!/usr/bin/env python3
"""Writes the support-desk example dataset of takumi (examples/support/), written by the
project for this purpose: customer-support conversations of Hanamori Cycle (花森サイクル),
a fictional bicycle shop. Every name, price, number, address and policy below is invented,
so a base model cannot know them; a fine-tuned model can only state them if it learned them.

Outputs (OpenAI chat JSONL: {"messages": [system, user, assistant, ...]}):
  train.jsonl    conversations in English and Japanese: each fact asked in four wordings per
                 language, a few two-question conversations, greetings / thanks / off-topic
                 requests (tone)
  valid.jsonl    one further wording per fact and language (for validation loss)
  heldout.jsonl  {"id", "lang", "system", "question", "facts": [[alternatives], ...]}: a fifth
                 wording per fact and language, never trained on; an answer passes when it
                 contains, for every entry of "facts", one of its alternatives (compared after
                 tools/fact_match.py's normalisation: NFKC, commas/spaces removed, dashes and
                 wave dashes unified, lower case)
  facts.md       the company's facts as one table (for people)

Deterministic: no randomness, the same files every run. Stdlib only.
Usage: python3 examples/support/make_support_data.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

SYSTEM = {
    "en": "You are Rin, the customer support assistant of Hanamori Cycle. Answer politely and briefly.",
    "ja": "あなたは花森サイクルのカスタマーサポート担当「リン」です。丁寧に、簡潔に答えてください。",
}

# Each fact: answers (two phrasings per language, always stating the fact the same way),
# questions (6 per language: 4 train, 1 validation, 1 held out) and the held-out keywords.
FACTS = [
    {
        "id": "hours",
        "table": ("Opening hours", "Weekdays 9:30–18:00, Saturdays 10:00–16:00, closed Sundays and public holidays"),
        "en_a": ["Our shop is open 9:30–18:00 on weekdays and 10:00–16:00 on Saturdays. We are closed on Sundays and public holidays.",
                 "We are open from 9:30 to 18:00 Monday to Friday, and from 10:00 to 16:00 on Saturdays. Sundays and public holidays are closed."],
        "ja_a": ["営業時間は平日9:30〜18:00、土曜日10:00〜16:00です。日曜・祝日は定休日です。",
                 "平日は9:30〜18:00、土曜日は10:00〜16:00に営業しております。日曜日と祝日はお休みです。"],
        "en_q": ["What are your opening hours?", "When is the shop open?", "What time do you open and close on weekdays?",
                 "Can you tell me your business hours?", "Until what time are you open today? It's a Tuesday.",
                 "I'd like to visit after work on a Thursday. What are your hours?"],
        "ja_q": ["営業時間を教えてください。", "お店は何時から何時まで開いていますか？", "平日の開店時間と閉店時間は？",
                 "営業時間は何時までですか？", "火曜日は何時まで開いていますか？", "木曜日の仕事帰りに寄りたいのですが、営業時間は？"],
        "en_k": [["9:30"], ["18:00"]], "ja_k": [["9:30"], ["18:00"]],
    },
    {
        "id": "saturday",
        "table": ("Saturday hours", "10:00–16:00"),
        "en_a": ["On Saturdays we are open from 10:00 to 16:00. On weekdays we are open 9:30–18:00, and we are closed on Sundays.",
                 "Yes, we are open on Saturdays, 10:00–16:00. We are closed on Sundays and public holidays."],
        "ja_a": ["土曜日は10:00〜16:00に営業しております。平日は9:30〜18:00、日曜日は定休日です。",
                 "はい、土曜日も10:00〜16:00に営業しております。日曜・祝日はお休みです。"],
        "en_q": ["Are you open on Saturdays?", "What are your Saturday hours?", "Can I come by on a Saturday?",
                 "How late are you open on Saturday?", "Is the shop open at the weekend?",
                 "I can only come on Saturday afternoon. Until when are you open?"],
        "ja_q": ["土曜日は営業していますか？", "土曜日の営業時間は？", "土曜日に行っても大丈夫ですか？", "土曜日は何時まで開いていますか？",
                 "週末もお店は開いていますか？", "土曜の午後しか行けないのですが、何時まで営業していますか？"],
        "en_k": [["16:00"]], "ja_k": [["16:00"]],
    },
    {
        "id": "phone",
        "table": ("Phone", "0120-874-312 (toll-free, during opening hours)"),
        "en_a": ["You can call us toll-free at 0120-874-312 during our opening hours.",
                 "Our phone number is 0120-874-312. The call is free, and we answer during opening hours."],
        "ja_a": ["お電話はフリーダイヤル0120-874-312までどうぞ。営業時間内に承ります。",
                 "電話番号は0120-874-312です。通話料無料で、営業時間内に対応しております。"],
        "en_q": ["What is your phone number?", "How can I call you?", "Is there a number I can call for support?",
                 "Do you have a toll-free number?", "I'd rather talk to someone. Which number should I dial?",
                 "Could you give me a telephone number to reach your staff?"],
        "ja_q": ["電話番号を教えてください。", "電話で問い合わせたいです。", "サポートの電話番号はありますか？", "フリーダイヤルはありますか？",
                 "直接話したいのですが、何番にかければいいですか？", "スタッフに電話で連絡したいのですが、番号は？"],
        "en_k": [["0120-874-312"]], "ja_k": [["0120-874-312"]],
    },
    {
        "id": "email",
        "table": ("Email", "support@hanamori-cycle.example, reply within one business day"),
        "en_a": ["Please email us at support@hanamori-cycle.example. We reply within one business day.",
                 "You can write to support@hanamori-cycle.example, and we will answer within one business day."],
        "ja_a": ["メールはsupport@hanamori-cycle.exampleまでお送りください。1営業日以内にご返信いたします。",
                 "support@hanamori-cycle.exampleへメールをお送りいただければ、1営業日以内にお返事いたします。"],
        "en_q": ["What is your email address?", "Can I contact you by email?", "Where should I send an email?",
                 "How do I reach support in writing?", "Which address do I use to email customer support?",
                 "I want to send you photos of a problem. What's your email?"],
        "ja_q": ["メールアドレスを教えてください。", "メールで問い合わせできますか？", "メールの送り先はどこですか？", "文書で問い合わせたいのですが。",
                 "サポートへのメールはどのアドレスに送ればいいですか？", "不具合の写真を送りたいのですが、メールアドレスは？"],
        "en_k": [["support@hanamori-cycle.example"]], "ja_k": [["support@hanamori-cycle.example"]],
    },
    {
        "id": "kazeyomi",
        "table": ("Kazeyomi E5 (e-bike)", "¥148,000 including tax"),
        "en_a": ["The Kazeyomi E5 e-bike costs ¥148,000 including tax.",
                 "Our electric bike, the Kazeyomi E5, is ¥148,000 (tax included)."],
        "ja_a": ["電動アシスト自転車「カゼヨミE5」は税込148,000円です。",
                 "カゼヨミE5の価格は税込148,000円でございます。"],
        "en_q": ["How much is the Kazeyomi E5?", "What does your e-bike cost?", "What's the price of the Kazeyomi E5 electric bike?",
                 "Is the Kazeyomi E5 expensive?", "How much would I pay for your electric bicycle?",
                 "I'm thinking of buying the Kazeyomi E5. What's the total price with tax?"],
        "ja_q": ["カゼヨミE5はいくらですか？", "電動自転車の値段を教えてください。", "カゼヨミE5の価格は？", "カゼヨミE5は高いですか？",
                 "電動アシスト自転車を買うといくらになりますか？", "カゼヨミE5の購入を考えています。税込でいくらですか？"],
        "en_k": [["148,000"]], "ja_k": [["148,000"]],
    },
    {
        "id": "tsubame",
        "table": ("Tsubame 3 (city bike)", "¥52,800 including tax"),
        "en_a": ["The Tsubame 3 city bike is ¥52,800 including tax.",
                 "Our city bike, the Tsubame 3, costs ¥52,800 (tax included)."],
        "ja_a": ["シティサイクル「ツバメ3」は税込52,800円です。",
                 "ツバメ3の価格は税込52,800円でございます。"],
        "en_q": ["How much is the Tsubame 3?", "What does your city bike cost?", "What's the price of the Tsubame 3?",
                 "Do you have a cheaper bike than the e-bike?", "How much is a regular, non-electric bike from you?",
                 "My daughter needs a bike for school. How much is the Tsubame 3?"],
        "ja_q": ["ツバメ3はいくらですか？", "シティサイクルの値段は？", "ツバメ3の価格を教えてください。", "電動じゃない自転車はありますか？",
                 "普通の自転車はいくらですか？", "娘の通学用にツバメ3を考えています。値段はいくらですか？"],
        "en_k": [["52,800"]], "ja_k": [["52,800"]],
    },
    {
        "id": "helmet",
        "table": ("Hoshi Helmet", "¥4,980"),
        "en_a": ["The Hoshi Helmet costs ¥4,980.",
                 "Our Hoshi Helmet is ¥4,980, and it comes in three sizes."],
        "ja_a": ["「ホシヘルメット」は4,980円です。",
                 "ホシヘルメットの価格は4,980円で、サイズは3種類ございます。"],
        "en_q": ["How much is a helmet?", "What does the Hoshi Helmet cost?", "Do you sell helmets?",
                 "What's the price of your helmet?", "I need head protection for cycling. How much is your helmet?",
                 "How much would the Hoshi Helmet be?"],
        "ja_q": ["ヘルメットはいくらですか？", "ホシヘルメットの値段は？", "ヘルメットは売っていますか？", "ヘルメットの価格を教えてください。",
                 "自転車用のヘルメットがほしいのですが、いくらですか？", "ホシヘルメットはおいくらですか？"],
        "en_k": [["4,980"]], "ja_k": [["4,980"]],
    },
    {
        "id": "returns",
        "table": ("Returns", "within 14 days of delivery, unused, with the receipt"),
        "en_a": ["You can return items within 14 days of delivery if they are unused and you have the receipt.",
                 "Returns are accepted within 14 days of delivery for unused items with the receipt."],
        "ja_a": ["商品到着から14日以内で、未使用かつレシートがあれば返品できます。",
                 "返品は商品到着後14日以内、未使用品でレシートがある場合に承ります。"],
        "en_q": ["What is your return policy?", "Can I return an item?", "How long do I have to return something?",
                 "I changed my mind about a purchase. Can I send it back?", "Is there a deadline for returns?",
                 "I bought a bag last week and never used it. Can I still return it?"],
        "ja_q": ["返品はできますか？", "返品の条件を教えてください。", "返品の期限はいつまでですか？", "買った商品をやっぱり返したいです。",
                 "返品の締め切りはありますか？", "先週買ったバッグを一度も使っていません。まだ返品できますか？"],
        "en_k": [["14 days"]], "ja_k": [["14日"]],
    },
    {
        "id": "return_shipping",
        "table": ("Return shipping", "free for defective items, otherwise ¥880"),
        "en_a": ["Return shipping is free for defective items. For other returns, the return shipping fee is ¥880.",
                 "If the item is defective, we pay the return shipping. Otherwise the return shipping costs ¥880."],
        "ja_a": ["不良品の返送料は無料です。それ以外の返品の返送料は880円です。",
                 "不良品の場合の返送料は当社負担です。それ以外の場合、返送料は880円となります。"],
        "en_q": ["Who pays for return shipping?", "How much does it cost to send an item back?", "Is return shipping free?",
                 "What is the fee for returning an item?", "Do I have to pay postage when I return something?",
                 "If I return a helmet that simply doesn't fit, what will the shipping cost me?"],
        "ja_q": ["返品の送料は誰が払いますか？", "商品を返送するといくらかかりますか？", "返送料は無料ですか？", "返品の手数料はいくらですか？",
                 "返品するとき、送料は自分で払うのですか？", "サイズが合わなかったヘルメットを返品する場合、返送料はいくらですか？"],
        "en_k": [["880"]], "ja_k": [["880"]],
    },
    {
        "id": "shipping_fee",
        "table": ("Shipping fee", "¥770; free on orders of ¥11,000 or more"),
        "en_a": ["Shipping costs ¥770. Orders of ¥11,000 or more ship for free.",
                 "Our shipping fee is ¥770, and shipping is free when your order is ¥11,000 or more."],
        "ja_a": ["送料は770円です。11,000円以上のご注文は送料無料です。",
                 "送料は一律770円で、ご注文金額が11,000円以上の場合は無料になります。"],
        "en_q": ["How much is shipping?", "What is the delivery fee?", "Do you charge for shipping?",
                 "What does delivery cost?", "How much will you charge me to ship my order?",
                 "I'm ordering a few small parts. What's the postage?"],
        "ja_q": ["送料はいくらですか？", "配送料を教えてください。", "送料はかかりますか？", "配達の料金は？",
                 "注文品を送ってもらうといくらかかりますか？", "小さな部品をいくつか注文します。送料はいくらですか？"],
        "en_k": [["770"]], "ja_k": [["770"]],
    },
    {
        "id": "free_shipping",
        "table": ("Free shipping", "orders of ¥11,000 or more"),
        "en_a": ["Shipping is free on orders of ¥11,000 or more. Below that, shipping costs ¥770.",
                 "Orders of ¥11,000 or more ship for free; smaller orders have a ¥770 shipping fee."],
        "ja_a": ["11,000円以上のご注文で送料無料になります。それ未満の場合、送料は770円です。",
                 "ご注文金額が11,000円以上なら送料無料です。11,000円未満の場合は送料770円がかかります。"],
        "en_q": ["Do you offer free shipping?", "When is shipping free?", "How much do I need to spend for free delivery?",
                 "Is there a minimum order for free shipping?", "What order total gets me free shipping?",
                 "If I add a helmet to my cart, could I reach free shipping? What's the threshold?"],
        "ja_q": ["送料無料になりますか？", "いくら以上で送料無料ですか？", "送料無料の条件を教えてください。", "送料が無料になる最低金額は？",
                 "いくら買えば送料がかからなくなりますか？", "ヘルメットを追加したら送料無料になりますか？基準はいくらですか？"],
        "en_k": [["11,000"]], "ja_k": [["11,000"]],
    },
    {
        "id": "delivery_time",
        "table": ("Delivery time", "2–4 business days"),
        "en_a": ["Orders arrive in 2–4 business days.",
                 "Delivery takes 2–4 business days after we ship your order."],
        "ja_a": ["ご注文の商品は2〜4営業日でお届けします。",
                 "発送後、2〜4営業日でお届けいたします。"],
        "en_q": ["How long does delivery take?", "When will my order arrive?", "How many days does shipping take?",
                 "How fast do you deliver?", "If I order today, when can I expect the package?",
                 "I need a new tire soon. How long until it gets to me?"],
        "ja_q": ["配送にはどのくらいかかりますか？", "注文した商品はいつ届きますか？", "配達まで何日かかりますか？", "届くまでの日数を教えてください。",
                 "今日注文したら、いつごろ届きますか？", "タイヤが急ぎで必要です。届くまで何日かかりますか？"],
        "en_k": [["2-4"]], "ja_k": [["2-4"]],
    },
    {
        "id": "islands",
        "table": ("Okinawa and remote islands", "+¥1,650 on top of the shipping fee"),
        "en_a": ["Deliveries to Okinawa and remote islands cost an extra ¥1,650.",
                 "For Okinawa and remote islands we add ¥1,650 to the shipping fee."],
        "ja_a": ["沖縄・離島へのお届けは、追加で1,650円かかります。",
                 "沖縄および離島への配送は、送料に1,650円が加算されます。"],
        "en_q": ["Do you ship to Okinawa?", "Is delivery to remote islands more expensive?", "What is the extra charge for Okinawa?",
                 "I live on a small island. Is there an extra shipping fee?", "How much more does it cost to ship to Ishigaki Island?",
                 "Can you deliver to Okinawa, and what's the surcharge?"],
        "ja_q": ["沖縄にも配送できますか？", "離島への配送は高くなりますか？", "沖縄の追加料金はいくらですか？", "離島に住んでいます。追加の送料はありますか？",
                 "石垣島まで送ると、いくら追加でかかりますか？", "沖縄への配送は可能ですか？追加料金は？"],
        "en_k": [["1,650"]], "ja_k": [["1,650"]],
    },
    {
        "id": "frame_warranty",
        "table": ("Frame warranty", "5 years"),
        "en_a": ["Our bicycle frames have a 5-year warranty.",
                 "Every frame we sell is covered by a 5-year warranty."],
        "ja_a": ["フレームの保証期間は5年です。",
                 "当店の自転車のフレームには5年間の保証がございます。"],
        "en_q": ["How long is the frame warranty?", "Is the frame covered by a warranty?", "What warranty do you give on frames?",
                 "How many years is the bike frame guaranteed?", "If my frame cracks after two years, is it still under warranty? How long does it last?",
                 "What's the guarantee period for the bicycle frame?"],
        "ja_q": ["フレームの保証期間は？", "フレームに保証はありますか？", "フレーム保証について教えてください。", "自転車のフレームは何年保証ですか？",
                 "2年後にフレームが割れたら保証の対象ですか？保証は何年ですか？", "車体フレームの保証期間を教えてください。"],
        "en_k": [["5-year", "5 year", "five-year", "five year"]], "ja_k": [["5年"]],
    },
    {
        "id": "battery_warranty",
        "table": ("Battery warranty", "2 years or 500 charge cycles, whichever comes first"),
        "en_a": ["The battery warranty is 2 years or 500 charge cycles, whichever comes first.",
                 "E-bike batteries are covered for 2 years or 500 charge cycles, whichever comes first."],
        "ja_a": ["バッテリーの保証は2年または充電500回のどちらか早い方までです。",
                 "電動自転車のバッテリーは、2年間または充電500回まで保証いたします（早い方が適用）。"],
        "en_q": ["What is the battery warranty?", "How long is the e-bike battery guaranteed?", "Is the battery covered by warranty?",
                 "What warranty comes with the Kazeyomi battery?", "How many charge cycles does the battery warranty cover?",
                 "My battery is a year old and fading. Is it still under warranty, and what are the limits?"],
        "ja_q": ["バッテリーの保証は？", "電動自転車のバッテリーは何年保証ですか？", "バッテリーは保証の対象ですか？", "カゼヨミのバッテリー保証を教えてください。",
                 "バッテリー保証は充電何回までですか？", "1年使ったバッテリーが弱ってきました。保証の範囲はどこまでですか？"],
        "en_k": [["500"]], "ja_k": [["500"]],
    },
    {
        "id": "battery_price",
        "table": ("Replacement battery", "¥39,600"),
        "en_a": ["A replacement battery costs ¥39,600.",
                 "A new battery for the Kazeyomi E5 is ¥39,600."],
        "ja_a": ["交換用バッテリーは39,600円です。",
                 "カゼヨミE5の新しいバッテリーは39,600円でございます。"],
        "en_q": ["How much is a replacement battery?", "What does a new battery cost?", "How much is a spare battery for the Kazeyomi E5?",
                 "I need a new e-bike battery. What's the price?", "What would it cost to replace my worn-out battery?",
                 "Can I buy a second battery, and how much is it?"],
        "ja_q": ["交換用バッテリーはいくらですか？", "新しいバッテリーの値段は？", "カゼヨミE5の予備バッテリーはいくらですか？",
                 "電動自転車のバッテリーを買い替えたいです。価格は？", "古くなったバッテリーを交換するといくらかかりますか？",
                 "2個目のバッテリーを買えますか？いくらですか？"],
        "en_k": [["39,600"]], "ja_k": [["39,600"]],
    },
    {
        "id": "tune",
        "table": ("Basic Tune (maintenance)", "¥3,300"),
        "en_a": ["Our Basic Tune maintenance costs ¥3,300.",
                 "A Basic Tune (brakes, gears, chain and tire check) is ¥3,300."],
        "ja_a": ["メンテナンスの「ベーシックチューン」は3,300円です。",
                 "ベーシックチューン（ブレーキ・変速・チェーン・タイヤ点検）は3,300円でございます。"],
        "en_q": ["How much is a tune-up?", "What does the Basic Tune cost?", "How much do you charge for maintenance?",
                 "I want my bike checked over. What's the price?", "What's the cost of a general service for my bicycle?",
                 "My gears are slipping and the brakes squeak. How much would a Basic Tune be?"],
        "ja_q": ["点検はいくらですか？", "ベーシックチューンの料金は？", "メンテナンス料金を教えてください。", "自転車を点検してほしいです。料金は？",
                 "自転車の整備をお願いするといくらかかりますか？", "ギアが滑ってブレーキも鳴ります。ベーシックチューンはいくらですか？"],
        "en_k": [["3,300"]], "ja_k": [["3,300"]],
    },
    {
        "id": "flat",
        "table": ("Flat tire repair", "¥1,100"),
        "en_a": ["A flat tire repair costs ¥1,100.",
                 "We fix flat tires for ¥1,100."],
        "ja_a": ["パンク修理は1,100円です。",
                 "パンク修理の料金は1,100円でございます。"],
        "en_q": ["How much is a flat tire repair?", "Can you fix a puncture?", "What do you charge to fix a flat?",
                 "My tire is flat. How much to repair it?", "What's the cost of patching an inner tube?",
                 "I rode over glass and got a puncture. What will the repair cost?"],
        "ja_q": ["パンク修理はいくらですか？", "パンクを直してもらえますか？", "パンク修理の料金は？", "タイヤがパンクしました。修理代は？",
                 "チューブの修理はいくらかかりますか？", "ガラスを踏んでパンクしました。修理はいくらですか？"],
        "en_k": [["1,100"]], "ja_k": [["1,100"]],
    },
    {
        "id": "club",
        "table": ("Hanamori Club (membership)", "¥500 per month: 10% off parts and a free Basic Tune every year"),
        "en_a": ["The Hanamori Club membership is ¥500 per month. Members get 10% off parts and a free Basic Tune every year.",
                 "Hanamori Club costs ¥500 a month and gives you 10% off parts plus one free Basic Tune a year."],
        "ja_a": ["「花森クラブ」の会費は月額500円です。部品が10%オフになり、年1回ベーシックチューンが無料です。",
                 "花森クラブは月500円で、部品10%オフと年1回の無料ベーシックチューンが受けられます。"],
        "en_q": ["Do you have a membership program?", "What is the Hanamori Club?", "How much is the membership?",
                 "What do members get?", "Is there a subscription that gives discounts on parts?",
                 "Tell me about the Hanamori Club: the price and the benefits."],
        "ja_q": ["会員制度はありますか？", "花森クラブとは何ですか？", "会費はいくらですか？", "会員になると何の特典がありますか？",
                 "部品が割引になる会員サービスはありますか？", "花森クラブの料金と特典を教えてください。"],
        "en_k": [["500"], ["10%"]], "ja_k": [["500"], ["10%"]],
    },
    {
        "id": "test_ride",
        "table": ("E-bike rental for a test ride", "¥2,200 per day"),
        "en_a": ["You can rent an e-bike for a test ride for ¥2,200 per day.",
                 "Test-ride rentals of our e-bike cost ¥2,200 for one day."],
        "ja_a": ["電動自転車の試乗レンタルは1日2,200円です。",
                 "試乗用の電動自転車は1日2,200円でお貸ししております。"],
        "en_q": ["Can I test ride an e-bike?", "Do you rent bikes?", "How much is a test ride rental?",
                 "Can I borrow the Kazeyomi for a day before buying?", "What does it cost to rent an electric bike for one day?",
                 "I'd like to try the e-bike on my commute first. Is that possible, and at what price?"],
        "ja_q": ["電動自転車の試乗はできますか？", "自転車のレンタルはありますか？", "試乗レンタルの料金は？", "購入前にカゼヨミを1日借りられますか？",
                 "電動自転車を1日借りるといくらですか？", "通勤で一度試してから買いたいのですが、可能ですか？料金は？"],
        "en_k": [["2,200"]], "ja_k": [["2,200"]],
    },
    {
        "id": "location",
        "table": ("Shop address", "2-7-15 Kichijoji Honcho, Musashino, Tokyo; 5 minutes from Kichijoji Station"),
        "en_a": ["Our shop is at 2-7-15 Kichijoji Honcho, Musashino, Tokyo, a 5-minute walk from Kichijoji Station.",
                 "You will find us at 2-7-15 Kichijoji Honcho in Musashino, Tokyo, 5 minutes on foot from Kichijoji Station."],
        "ja_a": ["店舗は東京都武蔵野市吉祥寺本町2-7-15にあります。吉祥寺駅から徒歩5分です。",
                 "当店の所在地は東京都武蔵野市吉祥寺本町2-7-15、吉祥寺駅から歩いて5分です。"],
        "en_q": ["Where is your shop?", "What is your address?", "Where are you located?", "How do I get to your store?",
                 "Which station is closest to your shop?", "I want to visit in person. Where exactly are you?"],
        "ja_q": ["お店はどこにありますか？", "住所を教えてください。", "店舗の場所は？", "お店への行き方を教えてください。",
                 "最寄り駅はどこですか？", "直接お店に行きたいのですが、場所はどこですか？"],
        "en_k": [["Kichijoji"]], "ja_k": [["吉祥寺"]],
    },
    {
        "id": "payment",
        "table": ("Payment", "credit card, PayPay or bank transfer; no cash on delivery"),
        "en_a": ["We accept credit cards, PayPay and bank transfer. Cash on delivery is not available.",
                 "You can pay by credit card, PayPay or bank transfer; we do not offer cash on delivery."],
        "ja_a": ["お支払いはクレジットカード、PayPay、銀行振込がご利用いただけます。代金引換はご利用いただけません。",
                 "クレジットカード・PayPay・銀行振込でお支払いいただけます。代引きには対応しておりません。"],
        "en_q": ["How can I pay?", "Which payment methods do you accept?", "Can I pay with PayPay?", "Do you offer cash on delivery?",
                 "What are my options for paying for an order?", "Can I use my phone to pay, or do I need a card?"],
        "ja_q": ["支払い方法は？", "どの支払い方法が使えますか？", "PayPayは使えますか？", "代引きはできますか？",
                 "注文の支払い方法にはどんな選択肢がありますか？", "スマホで支払えますか？それともカードが必要ですか？"],
        "en_k": [["PayPay"]], "ja_k": [["PayPay"]],
    },
    {
        "id": "points",
        "table": ("Points", "1 point per ¥100 spent; 1 point = ¥1"),
        "en_a": ["You earn 1 point for every ¥100 you spend, and each point is worth ¥1 on your next purchase.",
                 "Every ¥100 you spend earns 1 point; 1 point counts as ¥1 off later."],
        "ja_a": ["お買い上げ100円ごとに1ポイントが貯まり、1ポイント＝1円としてご利用いただけます。",
                 "100円のお買い物につき1ポイント付与され、次回から1ポイント1円として使えます。"],
        "en_q": ["Do you have a points program?", "How do points work?", "How many points do I earn?",
                 "Can I collect points when I shop?", "What's the point rate on purchases?",
                 "If I buy something, do I get points back? How many?"],
        "ja_q": ["ポイント制度はありますか？", "ポイントの仕組みを教えてください。", "ポイントはどれくらい貯まりますか？", "買い物でポイントは貯まりますか？",
                 "購入時のポイント還元率は？", "何か買ったらポイントはもらえますか？何ポイントですか？"],
        "en_k": [["1 point"]], "ja_k": [["1ポイント"]],
    },
    {
        "id": "gift",
        "table": ("Gift wrapping", "¥330"),
        "en_a": ["Gift wrapping is available for ¥330.",
                 "We can gift-wrap your order for ¥330."],
        "ja_a": ["ギフトラッピングは330円で承ります。",
                 "ギフト包装は330円でご利用いただけます。"],
        "en_q": ["Do you offer gift wrapping?", "How much is gift wrapping?", "Can you wrap my order as a present?",
                 "Is gift wrap available?", "I'm buying a helmet as a birthday present. Can you wrap it, and for how much?",
                 "What does it cost to have an item wrapped as a gift?"],
        "ja_q": ["ギフトラッピングはできますか？", "ラッピングの料金は？", "プレゼント用に包装してもらえますか？", "ギフト包装はありますか？",
                 "誕生日プレゼントにヘルメットを買います。ラッピングできますか？料金は？", "商品をギフト用に包むといくらですか？"],
        "en_k": [["330"]], "ja_k": [["330"]],
    },
    {
        "id": "cancel",
        "table": ("Order cancellation", "free until the order ships; after shipping it is handled as a return"),
        "en_a": ["You can cancel for free until your order ships. After shipping, please follow the return process.",
                 "Cancellation is free until we ship your order; once it has shipped, it is handled as a return."],
        "ja_a": ["発送前であれば無料でキャンセルできます。発送後は返品としてお手続きください。",
                 "ご注文のキャンセルは発送前まで無料です。発送後は返品扱いとなります。"],
        "en_q": ["Can I cancel my order?", "How do I cancel an order?", "Is there a cancellation fee?",
                 "I ordered the wrong size. Can I still cancel?", "What happens if I want to cancel after the order has shipped?",
                 "I just placed an order by mistake. Can I cancel it without paying anything?"],
        "ja_q": ["注文をキャンセルできますか？", "キャンセルの方法は？", "キャンセル料はかかりますか？", "サイズを間違えて注文しました。キャンセルできますか？",
                 "発送後にキャンセルしたい場合はどうなりますか？", "間違えて注文してしまいました。無料でキャンセルできますか？"],
        "en_k": None, "ja_k": None,  # no distinctive keyword: trained and validated, not scored
    },
]

# Two-question conversations: (fact a, fact b) pairs; the questions are taken from the training wordings.
PAIRS = [("hours", "location"), ("kazeyomi", "test_ride"), ("shipping_fee", "delivery_time"), ("returns", "return_shipping"),
         ("battery_warranty", "battery_price"), ("tune", "club"), ("helmet", "gift"), ("payment", "points"),
         ("phone", "email"), ("frame_warranty", "flat"), ("tsubame", "free_shipping"), ("islands", "cancel")]

TONE = {
    "en": [
        ("Hello!", "Hello, this is Rin from Hanamori Cycle. How can I help you today?"),
        ("Hi, I have a question.", "Hello! I'm Rin from Hanamori Cycle. Please go ahead and ask."),
        ("Thank you, that's all.", "Thank you for contacting Hanamori Cycle. Have a safe ride!"),
        ("Thanks for your help!", "You're welcome! If you have any other questions, just ask. Have a safe ride!"),
        ("Can you recommend a good restaurant nearby?", "I'm sorry, I can only help with questions about Hanamori Cycle's products and services. Is there anything about your bicycle I can help with?"),
        ("What do you think about the election?", "I'm sorry, I can only help with questions about Hanamori Cycle. Is there anything about our shop or products I can help with?"),
        ("My new bike arrived scratched. I'm really upset.", "I'm very sorry about the scratches. A damaged item counts as defective, so return shipping is free. Please send a photo to support@hanamori-cycle.example and we will arrange an exchange."),
        ("Your delivery is late and nobody told me anything!", "I'm very sorry for the delay and the lack of updates. Orders usually arrive in 2–4 business days. Please tell me your order number and I will check it right away."),
    ],
    "ja": [
        ("こんにちは。", "こんにちは、花森サイクルのリンです。ご用件をお聞かせください。"),
        ("質問があります。", "はい、花森サイクルのリンがお答えします。どうぞお聞かせください。"),
        ("ありがとうございました。以上です。", "花森サイクルへのお問い合わせありがとうございました。安全運転でお楽しみください。"),
        ("助かりました、ありがとう！", "どういたしまして。ほかにもご不明な点があれば、いつでもお尋ねください。"),
        ("近くのおいしいレストランを教えて。", "申し訳ございません。花森サイクルの商品とサービスに関するご質問のみお答えしております。自転車についてお手伝いできることはございますか？"),
        ("今度の選挙についてどう思いますか？", "申し訳ございません。花森サイクルに関するご質問のみお答えしております。当店や商品についてご質問はございますか？"),
        ("届いた自転車に傷がありました。とても残念です。", "傷があったとのこと、大変申し訳ございません。破損品は不良品扱いとなり、返送料は無料です。写真をsupport@hanamori-cycle.exampleまでお送りいただければ、交換の手配をいたします。"),
        ("配達が遅れているのに連絡がありません！", "配達の遅れとご連絡の不足、大変申し訳ございません。通常は2〜4営業日でお届けしております。ご注文番号をお知らせいただければ、すぐにお調べいたします。"),
    ],
}


def conv(lang, turns):
    msgs = [{"role": "system", "content": SYSTEM[lang]}]
    for q, a in turns:
        msgs.append({"role": "user", "content": q})
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs}


def main():
    by_id = {f["id"]: f for f in FACTS}
    train, valid, held = [], [], []
    for f in FACTS:
        for lang in ("en", "ja"):
            qs, ans = f[lang + "_q"], f[lang + "_a"]
            assert len(qs) == 6 and len(ans) == 2, f["id"]
            for i, q in enumerate(qs[:4]):
                train.append(conv(lang, [(q, ans[i % 2])]))
            valid.append(conv(lang, [(qs[4], ans[0])]))
            if f[lang + "_k"] is None:
                continue
            held.append({"id": f"{f['id']}-{lang}", "lang": lang, "system": SYSTEM[lang], "question": qs[5],
                         "facts": f[lang + "_k"]})
            # every keyword must be in every training answer of the fact, in the normalised form
            for a in ans:
                for alts in f[lang + "_k"]:
                    assert any(norm(x) in norm(a) for x in alts), (f["id"], lang, alts, a)
    for k, (a, b) in enumerate(PAIRS):
        for lang in ("en", "ja"):
            fa, fb = by_id[a], by_id[b]
            train.append(conv(lang, [(fa[lang + "_q"][k % 4], fa[lang + "_a"][k % 2]),
                                     (fb[lang + "_q"][(k + 1) % 4], fb[lang + "_a"][(k + 1) % 2])]))
    for lang in ("en", "ja"):
        for q, a in TONE[lang]:
            train.append(conv(lang, [(q, a)]))
    # interleave deterministically so that neighbouring lines differ in topic and language
    train = train[0::3] + train[1::3] + train[2::3]
    write_jsonl("train.jsonl", train)
    write_jsonl("valid.jsonl", valid)
    write_jsonl("heldout.jsonl", held)
    with open(os.path.join(HERE, "facts.md"), "w", encoding="utf-8") as fp:
        fp.write("# Hanamori Cycle (花森サイクル) — the facts of the example dataset\n\n"
                 "A fictional bicycle shop; everything here is invented (see make_support_data.py).\n\n"
                 "| topic | fact |\n|---|---|\n")
        for f in FACTS:
            fp.write(f"| {f['table'][0]} | {f['table'][1]} |\n")
    print(f"train {len(train)}, valid {len(valid)}, held-out {len(held)} "
          f"(en {sum(h['lang'] == 'en' for h in held)}, ja {sum(h['lang'] == 'ja' for h in held)})")


def norm(s):
    # the same normalisation as tools/fact_match.py (kept in sync by the assertion above)
    import unicodedata
    s = unicodedata.normalize("NFKC", s).lower()
    for d in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u301c\uff5e~":
        s = s.replace(d, "-")
    return s.replace(",", "").replace(" ", "")


def write_jsonl(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as fp:
        for r in rows:
            fp.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
